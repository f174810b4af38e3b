"""Log-normal job durations (issue 13 item 1): with durations.sigma > 0 each job's total duration is drawn
around its configured default (the median), deterministically for a seed, from a generator of its own;
sigma 0, the default, keeps today's fixed durations."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from pydantic import ValidationError

from aep_activator.aep.api.models import ExportJobCreate
from aep_activator.aepsim import Durations, ManualClock, SimulatorConfig, SimulatorState
from aep_activator.aepsim.state.core import lognormal

NOON = 1710072000.0
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
EXPORT = ExportJobCreate.model_validate({"destination": {"datasetId": "5b7c86968f7b6501e21ba9df"},
                                         "schema": {"name": "_xdm.context.profile"}})
N = 201


def durations(sigma: float, seed: int = 3) -> dict[str, list[float]]:
    """Total durations in real-AEP seconds of N jobs of each kind."""
    config = SimulatorConfig(seed=seed, durations=Durations(sigma=sigma),
                             guardrails={"segment_jobs_per_day_per_sandbox": N, "segment_jobs_per_year_production": N})
    state = SimulatorState(config, ManualClock(NOON))
    for _ in range(N):
        state.create_segment_job([SEG_US])
        state.create_export_job(EXPORT)
    return {
        "segment": [j.ends_at - j.created for j in state.segment_jobs.values()],
        "export": [j.ends_at - j.created for j in state.export_jobs.values()],
    }


def run_durations(sigma: float, seed: int = 3) -> list[float]:
    config = SimulatorConfig(seed=seed, durations=Durations(sigma=sigma), guardrails={"adhoc_jobs_per_day_per_org": N})
    state = SimulatorState(config, ManualClock(NOON))
    ends = []
    for _ in range(N):
        started = state.start_adhoc_run({FLOW_A: [SEG_US]})
        run = state.flow_runs[started[0].run_id]
        ends.append(run.ends_at - run.created)
        run.ends_at = run.created  # free the audience for the next run
    return ends


def test_sigma_zero_keeps_every_duration_at_its_default() -> None:
    got = durations(0.0)
    assert set(got["segment"]) == {780.0} and set(got["export"]) == {300.0}
    assert set(run_durations(0.0)) == {180.0}


@pytest.mark.parametrize(("kind", "median"), [("segment", 780.0), ("export", 300.0)])
def test_with_a_spread_the_durations_vary_around_the_default_as_their_median(kind: str, median: float) -> None:
    got = durations(0.5)[kind]
    assert len(set(got)) == N
    assert abs(math.log(statistics.median(got) / median)) < 0.15
    spread = statistics.stdev(math.log(d) for d in got)
    assert 0.4 < spread < 0.6


def test_flow_run_durations_spread_around_180_seconds() -> None:
    got = run_durations(0.5)
    assert abs(math.log(statistics.median(got) / 180.0)) < 0.15


def test_the_same_seed_draws_the_same_durations_and_another_seed_others() -> None:
    assert durations(0.5, seed=3) == durations(0.5, seed=3)
    assert durations(0.5, seed=3) != durations(0.5, seed=4)


def test_the_spread_shifts_no_id_and_no_outcome() -> None:
    def ids_and_outcomes(sigma: float) -> list[tuple[str, bool]]:
        config = SimulatorConfig(seed=8, durations=Durations(sigma=sigma), failure_rates={"segment_job": 0.5},
                                 guardrails={"segment_jobs_per_day_per_sandbox": 20})
        state = SimulatorState(config, ManualClock(NOON))
        ids = [state.create_segment_job([SEG_US])["id"] for _ in range(12)]
        return [(job_id, state.segment_jobs[job_id].fails) for job_id in ids]

    fixed = ids_and_outcomes(0.0)
    assert {fails for _, fails in fixed} == {True, False}
    assert ids_and_outcomes(0.8) == fixed


def test_a_negative_or_huge_sigma_is_refused() -> None:
    for bad in (-0.1, 10):
        with pytest.raises(ValidationError, match="sigma"):
            Durations(sigma=bad)


# The draw itself, without a simulator: a pure function of (median, sigma, generator).


def test_a_draw_with_sigma_zero_is_exactly_the_median_and_still_consumes_one_draw() -> None:
    rng, twin = random.Random(11), random.Random(11)
    for median in (780.0, 300.0, 180.0):
        assert lognormal(median, 0.0, rng) == median
        twin.gauss(0.0, 1.0)
    assert rng.random() == twin.random()


def test_the_same_seed_gives_the_same_draws() -> None:
    first = [lognormal(780.0, 0.5, rng) for rng in [random.Random(5)] for _ in range(50)]
    again = [lognormal(780.0, 0.5, rng) for rng in [random.Random(5)] for _ in range(50)]
    other = [lognormal(780.0, 0.5, rng) for rng in [random.Random(6)] for _ in range(50)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("median", [780.0, 300.0, 180.0])
def test_over_many_draws_the_median_is_the_centre_and_the_log_spread_is_sigma(median: float) -> None:
    rng = random.Random(20261201)
    draws = [lognormal(median, 0.5, rng) for _ in range(20_001)]
    assert abs(statistics.median(draws) / median - 1) < 0.03
    assert abs(statistics.stdev(math.log(d) for d in draws) - 0.5) < 0.02
    assert min(draws) > 0
    # A log-normal is skewed right: its mean lies above its median by exp(sigma^2 / 2).
    assert statistics.fmean(draws) > statistics.median(draws)

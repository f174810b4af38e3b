"""Every metric's value after a known sequence of runs: one that succeeds, one that waits for quota, and one
recovered by the watchdog twice (a lost wake-up, then a dead execution) and cancelled.

The steps run through the real runner and scripts (tests/stepkit.py) against a real Redis and the simulator
over HTTP; the figures are read the way Prometheus reads them, by scraping the collector's exposition.
The AEP request counts are checked against the simulator's own journal.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aep_activator.aep.api import paths
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.testing import SimulatorHarness
from aep_activator.tasks.runtime import Runtime
from aep_activator.workers.api.metrics import registry
from tests.stepkit import new_run, record, step_once, step_runtime

pytestmark = pytest.mark.integration

FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
V2 = {"activation_info": {FLOW: ["4afe34ae-8c98-4513-8a1d-67ccaa54bc05"]}, "version": 2, "segment_job": False}
OTHER = {"activation_info": {FLOW: ["7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"]}, "version": 2, "segment_job": False}


class Clock:
    """Redis's clock for the scripts, shifted by ``offset`` (to cross a grace period or a lease)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def scrape(rt: Runtime) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry(lambda: rt)).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def series(samples: dict[Any, float], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def sim() -> Iterator[SimulatorHarness]:
    with SimulatorHarness(SimulatorConfig(speed=600, seed=5)) as h:
        yield h


def run_to_end(rt: Runtime, run_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not record(rt, run_id).terminal:
        assert time.monotonic() < deadline, record(rt, run_id)
        step_once(rt, run_id)
        time.sleep(0.05)


def test_every_metric_has_its_value_after_a_success_a_quota_wait_and_a_watchdog_recovery(
    sim: SimulatorHarness, redis_url: str, key_prefix: str
) -> None:
    clock = Clock()
    rt = step_runtime(sim.base_url, redis_url, key_prefix, clock=clock, quota_adhoc_per_day=1, watchdog_grace_s=5)

    # The oldest open run: created 1000 s ago, it waits for the adhoc quota that the next run spends.
    clock.offset = -1000.0
    waiting = new_run(rt, OTHER)
    clock.offset = 0.0
    done = new_run(rt, V2)
    run_to_end(rt, done)
    assert record(rt, done).status == "succeeded"
    step_once(rt, waiting)
    assert record(rt, waiting).status == "waiting"
    assert record(rt, waiting).wait_kind == "quota"

    # A third run: its wake-up is lost (rewake), then the execution that took it dies (recover); then cancelled.
    stranded = new_run(rt, OTHER)
    clock.offset = 6.0  # past WATCHDOG_GRACE_S
    assert [(w.run_id, w.kind) for w in rt.carriers.pop_due(grace_s=5)] == [(stranded, "rewake")]
    rec = record(rt, stranded)
    entered = rt.ledger.enter(stranded, rec.step, rec.seq, token=uuid.uuid4().hex, lease_s=3)
    assert entered.verdict == "ok"
    clock.offset = 10.0  # past that execution's lease
    assert [(w.run_id, w.kind) for w in rt.carriers.pop_due(grace_s=5)] == [(stranded, "recover")]
    assert rt.ledger.cancel(stranded, "test").verdict == "cancelled"

    m = scrape(rt)
    # Runs by status, the oldest open run, carriers.
    assert {dict(k)["status"]: v for k, v in series(m, "aep_runs").items()} == {
        "queued": 0, "running": 0, "waiting": 1, "succeeded": 1, "failed": 0, "cancelled": 1}  # fmt: skip
    assert 1000 <= value(m, "aep_run_oldest_open_age_seconds") < 1300
    assert value(m, "aep_delay_queue_depth") == 1  # the quota wait, due when the window opens
    assert value(m, "aep_open_carriers") == 1
    assert value(m, "aep_carrier_overdue_seconds") == 0
    assert value(m, "aep_broker_queue_length") == 0
    assert value(m, "aep_runs_finished_total", status="succeeded") == 1
    assert value(m, "aep_runs_finished_total", status="cancelled") == 1
    # The watchdog's recoveries, and nothing adopted or deferred by AEP.
    assert value(m, "aep_run_recoveries_total", kind="rewake") == 1
    assert value(m, "aep_run_recoveries_total", kind="recover") == 1
    assert series(m, "aep_run_adoptions_total") == {}
    assert value(m, "aep_conflicts_deferred_total") == 0
    # Quotas: the one adhoc slot is spent; the waiting run spent nothing.
    adhoc = {"quota": "adhoc", "scope": rt.settings.aep_org_id or "", "window": "day"}
    assert value(m, "aep_quota_used", **adhoc) == 1
    assert value(m, "aep_quota_limit", **adhoc) == 1
    assert value(m, "aep_quota_reserved", **adhoc) == 0
    assert value(m, "aep_quota_reset_timestamp_seconds", **adhoc) % 86400 == 0
    segment = {"quota": "segment_jobs", "scope": f"{rt.settings.aep_org_id}/prod", "window": "day"}
    assert (value(m, "aep_quota_used", **segment), value(m, "aep_quota_limit", **segment)) == (0, 2)

    # Step executions and durations: each step done once is observed once.
    polls = sum(1 for e in sim.server.ctx.journal.since(0) if (e["method"], e["template"]) == ("GET", paths.FLOW_RUN))
    executions = {tuple(v for _, v in k): n for k, n in series(m, "aep_step_executions_total").items()}
    assert executions == {("done", "run_activation"): 1, ("wait", "run_activation"): 1,
                          ("done", "poll_activation"): 1, ("wait", "poll_activation"): polls - 1}  # fmt: skip
    for step in ("run_activation", "poll_activation"):
        assert value(m, "aep_run_step_duration_seconds_count", step=step) == 1
        assert value(m, "aep_run_step_duration_seconds_bucket", step=step, le="+Inf") == 1
    assert 0 < value(m, "aep_run_step_duration_seconds_sum", step="poll_activation") < 60
    assert value(m, "aep_run_step_duration_seconds_count", step="create_segment_job") == 0

    # AEP requests: exactly what the simulator's journal saw (its IMS token calls aside), by route template.
    journal = Counter(
        (e["template"], e["method"], str(e["status"]))
        for e in sim.server.ctx.journal.since(0) if not e["template"].startswith("/ims/")
    )  # fmt: skip
    requests = {(d["route"], d["method"], d["status"]): int(v)
                for k, v in series(m, "aep_requests_total").items() for d in [dict(k)]}  # fmt: skip
    assert requests == dict(journal)
    assert requests[("/data/core/activation/disflowprovider/adhocrun", "POST", "200")] == 1
    for route in {r for r, _, _ in requests}:
        total = sum(n for (r, _, _), n in requests.items() if r == route)
        assert value(m, "aep_request_duration_seconds_count", route=route) == total
        assert value(m, "aep_request_duration_seconds_bucket", route=route, le="+Inf") == total
    assert all("{id}" in r or "/" + r.rsplit("/", 1)[-1] in r for r, _, _ in requests)  # templates, never ids
    flow_run_ids = [o["run_id"] for o in record(rt, done).flow_runs]
    exposition = generate_latest(registry(lambda: rt)).decode()
    assert not any(i in exposition for i in [done, waiting, stranded, *flow_run_ids])

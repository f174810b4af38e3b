"""The preflight spends nothing on an activation AEP would refuse, and waits where AEP's rules say wait.

The simulator and the run ledger share one manual clock, so the one-hour rule costs no real time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aep_activator.aep.api import paths
from aep_activator.aep.pipeline.scopes import Quota, specs
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.state.clock import ManualClock
from aep_activator.aepsim.testing import SimulatorHarness
from aep_activator.tasks.runtime import Runtime
from tests.stepkit import new_run, record, step_once, step_runtime

S3 = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUD_A = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
AUD_C = "3a1b2c3d-4e5f-6789-abcd-ef0123456789"  # mapped to the SFTP dataflow only
UNMAPPED = "db8961e9-d52f-45bc-b3fb-76d0382a6851"  # mapped to no dataflow
T0 = 1_800_000_000.0


@pytest.fixture
def world(redis_url: str, key_prefix: str) -> Iterator[tuple[SimulatorHarness, Runtime, ManualClock]]:
    clock = ManualClock(T0)
    with SimulatorHarness(SimulatorConfig(speed=1, seed=8), clock) as sim:
        yield sim, step_runtime(sim.base_url, redis_url, key_prefix, clock=clock.now), clock


def posts(sim: SimulatorHarness, template: str) -> int:
    return sum((e["method"], e["template"]) == ("POST", template) for e in sim.server.ctx.journal.since(0))


def test_an_unmapped_audience_fails_the_run_before_its_segment_job_spends_a_slot(world) -> None:
    sim, rt, _ = world
    run_id = new_run(rt, {"activation_info": {S3: [AUD_A, UNMAPPED]}, "version": 2})
    step_once(rt, run_id)
    run = record(rt, run_id)
    assert run.status == "failed" and run.failure is not None and run.failure.kind == "preflight"
    assert UNMAPPED in run.failure.message and AUD_A not in run.failure.message
    assert posts(sim, paths.SEGMENT_JOBS) == 0
    org = rt.settings.aep_org_id or ""
    daily, yearly = specs(Quota.SEGMENT_JOBS, rt.step_config.quotas, org_id=org, sandbox="prod")
    assert rt.quotas.usage(daily, T0).used == 0 and rt.quotas.usage(yearly, T0).used == 0


def test_an_audience_mapped_less_than_an_hour_ago_waits_the_hour_then_activates(world) -> None:
    sim, rt, clock = world
    sim.server.state.map_audience(S3, AUD_C)  # a marketer adds it to the S3 dataflow now
    run_id = new_run(rt, {"activation_info": {S3: [AUD_C]}, "version": 2, "segment_job": False})
    waited = step_once(rt, run_id)
    assert waited.change is not None and waited.change.next is not None and waited.change.next.same_step
    assert 3590 < waited.change.next.delay_s <= 3600
    assert "less than an hour ago" in (record(rt, run_id).waiting_reason or "")
    assert posts(sim, paths.ADHOC_RUN) == 0
    clock.advance(3600)
    step_once(rt, run_id)
    assert posts(sim, paths.ADHOC_RUN) == 1 and record(rt, run_id).flow_runs


def test_a_dataflow_processing_a_scheduled_export_makes_the_activation_wait_instead_of_colliding(world) -> None:
    sim, rt, clock = world
    scheduled = sim.server.state.start_scheduled_run(S3, [AUD_A])
    run_id = new_run(rt, {"activation_info": {S3: [AUD_A]}, "version": 2, "segment_job": False})
    step_once(rt, run_id)
    assert scheduled["id"] in (record(rt, run_id).waiting_reason or "")
    assert posts(sim, paths.ADHOC_RUN) == 0, "no POST into AEP's 'Run already going on'"
    clock.advance(3600)  # the scheduled export ends
    step_once(rt, run_id)
    assert [e["status"] for e in sim.server.ctx.journal.since(0) if e["template"] == paths.ADHOC_RUN] == [200]


@pytest.mark.parametrize("create_time", ["²", "1.2.3", "-5", "", "soon", "1e9"])
def test_a_hostile_first_activation_time_reads_as_unknown_instead_of_crashing_the_step(create_time: str) -> None:
    from aep_activator.aep.api.models import Flow

    flow = Flow.model_validate({"id": S3, "transformations": [{"params": {"segmentSelectors": {"selectors": [
        {"type": "PLATFORM_SEGMENT", "value": {"id": AUD_A, "createTime": create_time}}]}}}]})  # fmt: skip
    assert flow.mapped_audiences() == {AUD_A: 0.0}


def test_a_first_activation_time_in_epoch_seconds_is_read() -> None:
    from aep_activator.aep.api.models import Flow

    flow = Flow.model_validate({"id": S3, "transformations": [{"params": {"segmentSelectors": {"selectors": [
        {"type": "PLATFORM_SEGMENT", "value": {"id": AUD_A, "createTime": "1800000000"}}]}}}]})  # fmt: skip
    assert flow.mapped_audiences() == {AUD_A: 1_800_000_000.0}


def gets(sim: SimulatorHarness, template: str) -> int:
    return sum((e["method"], e["template"]) == ("GET", template) for e in sim.server.ctx.journal.since(0))


def test_the_activation_reuses_a_recent_read_of_its_dataflow_but_looks_again_for_an_audience_it_lacks(world) -> None:
    sim, rt, _ = world
    first = new_run(rt, {"activation_info": {S3: [AUD_A]}, "version": 2, "segment_job": False})
    step_once(rt, first)
    assert gets(sim, paths.FLOW) == 1 and posts(sim, paths.ADHOC_RUN) == 1
    sim.server.state.map_audience(S3, AUD_C)  # mapped after that read: the copy does not name it
    second = new_run(rt, {"activation_info": {S3: [AUD_C]}, "version": 2, "segment_job": False})
    step_once(rt, second)
    assert gets(sim, paths.FLOW) == 2, "an audience the copy lacks is looked up again, never refused from it"
    assert "less than an hour ago" in (record(rt, second).waiting_reason or "")
    third = new_run(rt, {"activation_info": {S3: [AUD_C]}, "version": 2, "segment_job": False})
    step_once(rt, third)
    assert "less than an hour ago" in (record(rt, third).waiting_reason or ""), "the third run reached the preflight"
    assert gets(sim, paths.FLOW) == 2, "a recent copy that maps every audience is reused"


def test_the_preflight_before_a_segment_job_always_reads_the_dataflow_afresh(world) -> None:
    sim, rt, _ = world
    for n in (1, 2):
        run_id = new_run(rt, {"activation_info": {S3: [AUD_A]}, "version": 2})
        step_once(rt, run_id)
        assert record(rt, run_id).segment_job_id
        assert gets(sim, paths.FLOW) == n

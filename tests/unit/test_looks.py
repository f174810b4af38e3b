"""Look before create cannot miss its job or adopt the wrong one, in any list order AEP documents.

Each test loses the answer to one POST (accept-then-timeout), buries the job AEP created under newer
look-alikes, with AEP's lists paging one item at a time, and checks what the next execution adopts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aep_activator.aep.api import paths
from aep_activator.aepsim.config import Guardrails, SimulatorConfig
from aep_activator.aepsim.testing import SimulatorHarness
from aep_activator.tasks.runtime import Runtime
from tests.stepkit import new_run, record, step_once, step_runtime

S3, SFTP = "b0780cb5-2bb7-4409-bf2c-c625ca818588", "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
AUD_A, AUD_B = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05", "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
GUARDRAILS = Guardrails(segment_jobs_per_day_per_sandbox=1000, adhoc_jobs_per_day_per_org=1000,
                        segment_jobs_per_year_production=1000)  # fmt: skip


@pytest.fixture(params=["-updatedAt", "-createdAt"], ids=["aep-default-order", "created-order"])
def sim(request: pytest.FixtureRequest) -> Iterator[SimulatorHarness]:
    lists = {"segment_jobs_page_size": 1, "export_jobs_page_size": 1, "flow_runs_page_size": 1,
             "flow_runs_orderby": request.param}  # fmt: skip
    config = SimulatorConfig.model_validate(
        {"speed": 600, "seed": 3, "hang_s": 0.3, "guardrails": GUARDRAILS.model_dump(), "lists": lists}
    )
    with SimulatorHarness(config) as harness:
        yield harness


def runtime_for(sim: SimulatorHarness, redis_url: str, key_prefix: str, **settings: object) -> Runtime:
    return step_runtime(sim.base_url, redis_url, key_prefix, quota_segment_jobs_per_day=1000, **settings)


def lose_the_answer(sim: SimulatorHarness, post: str, lost: bool = True) -> None:
    sim.server.ctx.apply_config({"endpoint_faults": {f"POST {post}": {"hang_rate": 1.0 if lost else 0.0}}})


def test_a_segment_job_buried_under_newer_look_alikes_of_other_runs_is_found_and_adopted(
    sim: SimulatorHarness, redis_url: str, key_prefix: str
) -> None:
    rt = runtime_for(sim, redis_url, key_prefix)
    run_id = new_run(rt, {"activation_info": {S3: [AUD_A]}, "version": 2})
    lose_the_answer(sim, paths.SEGMENT_JOBS)
    step_once(rt, run_id)  # POST accepted, answer lost
    lose_the_answer(sim, paths.SEGMENT_JOBS, lost=False)
    (ours,) = sim.server.state.segment_jobs.values()
    for i in range(5):  # identical jobs, newer than ours, each another run's
        job = rt.client.segment_jobs.create([AUD_A])
        assert rt.ledger.claim(f"other-{i}", "segment_job", job.id)
    step_once(rt, run_id)
    assert record(rt, run_id).segment_job_id == ours.id
    posts = [e for e in sim.server.ctx.journal.since(0) if (e["method"], e["template"]) == ("POST", paths.SEGMENT_JOBS)]
    assert len(posts) == 6, "ours and the five look-alikes: the look sent none"


def test_a_flow_run_buried_under_newer_runs_on_its_dataflow_is_found_on_a_later_page(
    sim: SimulatorHarness, redis_url: str, key_prefix: str
) -> None:
    rt = runtime_for(sim, redis_url, key_prefix)
    run_id = new_run(rt, {"activation_info": {S3: [AUD_A]}, "version": 2, "segment_job": False})
    lose_the_answer(sim, paths.ADHOC_RUN)
    step_once(rt, run_id)
    lose_the_answer(sim, paths.ADHOC_RUN, lost=False)
    (ours,) = sim.server.state.flow_runs.values()
    for _ in range(4):  # AEP's scheduler exports the other audience of the dataflow meanwhile
        sim.server.state.start_scheduled_run(S3, [AUD_B])
    for _ in range(20):
        done = step_once(rt, run_id)
        if record(rt, run_id).flow_runs:
            break
        assert done.change is not None and done.change.next is not None and done.change.next.same_step
        rt.redis.hset(rt.keys.run(run_id), "lease_until", 0)
    assert [o["run_id"] for o in record(rt, run_id).flow_runs] == [ours.id]
    assert sum(e["template"] == paths.ADHOC_RUN for e in sim.server.ctx.journal.since(0)) == 1, "one POST only"


def test_a_scheduled_flow_run_is_never_adopted_as_the_lost_post_that_aep_did_not_accept(
    sim: SimulatorHarness, redis_url: str, key_prefix: str
) -> None:
    rt = runtime_for(sim, redis_url, key_prefix, look_settle_s=3)
    run_id = new_run(rt, {"activation_info": {S3: [AUD_A]}, "version": 2, "segment_job": False})
    sim.server.ctx.apply_config({"endpoint_faults": {f"POST {paths.ADHOC_RUN}": {"drop_rate": 1.0}}})
    step_once(rt, run_id)  # the connection dropped: AEP did nothing, but we cannot know it
    sim.server.ctx.apply_config({"endpoint_faults": {f"POST {paths.ADHOC_RUN}": {"drop_rate": 0.0}}})
    scheduled = sim.server.state.start_scheduled_run(S3, [AUD_A])  # same dataflow, same audience, after our intent
    looked = step_once(rt, run_id)
    assert record(rt, run_id).flow_runs == [] and rt.ledger.owner("flow_run", scheduled["id"]) is None
    assert looked.change is not None and looked.change.next is not None and looked.change.next.same_step


def test_a_two_dataflow_activation_is_adopted_only_when_both_flow_runs_are_accounted_for(
    sim: SimulatorHarness, redis_url: str, key_prefix: str
) -> None:
    rt = runtime_for(sim, redis_url, key_prefix, look_settle_s=3, wait_deadline_s=1)
    run_id = new_run(rt, {"activation_info": {S3: [AUD_A], SFTP: [AUD_B]}, "version": 2, "segment_job": False})
    lose_the_answer(sim, paths.ADHOC_RUN)
    step_once(rt, run_id)
    lose_the_answer(sim, paths.ADHOC_RUN, lost=False)
    runs = list(sim.server.state.flow_runs.values())
    assert len(runs) == 2
    hidden = next(r for r in runs if r.flow_id == SFTP)
    del sim.server.state.flow_runs[hidden.id]  # AEP's list shows the S3 run only
    import time

    time.sleep(0.5)  # let the S3 run end (x600)
    for _ in range(3):
        step_once(rt, run_id)
        rt.redis.hset(rt.keys.run(run_id), "lease_until", 0)
        time.sleep(0.6)
        if record(rt, run_id).terminal:
            break
    r = record(rt, run_id)
    assert r.flow_runs == [], "adopted half an activation"
    assert r.status == "failed" and r.failure is not None and r.failure.kind == "unaccounted", r.timeline


def look_ctx(now: float, *, wait_kind: str | None, wait_since: float | None, settle: float = 8.0) -> object:
    """What still_looking reads of a step's context: the clock, two settings and the run's current wait."""
    from types import SimpleNamespace

    return SimpleNamespace(now=lambda: now, config=SimpleNamespace(look_settle_s=settle, wait_deadline_s=3600.0),
                           run=SimpleNamespace(wait_kind=wait_kind, wait_since=wait_since))  # fmt: skip


def test_a_lost_answer_is_settled_look_settle_s_after_it_was_lost_not_after_its_intent() -> None:
    """The POST was in flight 1 s (its intent at 100, its answer lost at 101): a listing read at 108.5 is
    8.5 s after the intent but only 7.5 s after the loss, and proves nothing yet."""
    from aep_activator.aep.pipeline.steps.base import WaitKind
    from aep_activator.aep.pipeline.steps.looks import Look
    from aep_activator.aep.pipeline.steps.polls import still_looking

    lost = look_ctx(108.5, wait_kind=WaitKind.LOOK.value, wait_since=101.0)
    wait = still_looking(lost, Look(True, []), 100.0, "the job")  # type: ignore[arg-type]
    assert wait is not None and wait.delay_s == pytest.approx(0.5)
    assert still_looking(look_ctx(109.0, wait_kind=WaitKind.LOOK.value, wait_since=101.0), Look(True, []), 100.0,
                         "the job") is None  # type: ignore[arg-type]  # fmt: skip
    # No look wait began (the execution died after sending): the intent is all there is to count from.
    assert still_looking(look_ctx(108.5, wait_kind=None, wait_since=None), Look(True, []), 100.0,
                         "the job") is None  # type: ignore[arg-type]  # fmt: skip

"""A whole activation chain through a real worker process, real Redis and the simulator over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aep_activator.tasks import start_activation
from tests.integration.conftest import EXAMPLE, wait_for_runs

pytestmark = pytest.mark.integration

SEGMENT_POST = "/data/core/ups/segment/jobs"
EXPORT_POST = "/data/core/ups/export/jobs"
ADHOC_POST = "/data/core/activation/disflowprovider/adhocrun"


def example() -> dict:
    return json.loads(Path(EXAMPLE).read_text())


def test_the_tutorial_chain_v1_succeeds_with_exactly_one_post_per_step(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker())
    run_id = start_activation(example())
    (run,) = wait_for_runs(stack, [run_id])
    assert run.status == "succeeded", (run.error, run.timeline)
    assert run.segment_job_id and run.export_job_id and run.flow_runs
    posts = stack.posts()
    assert posts == {"/ims/token/v3": 1, SEGMENT_POST: 1, EXPORT_POST: 1, ADHOC_POST: 1}
    (adhoc,) = stack.journal("POST", ADHOC_POST)
    assert adhoc["body"]["exportIds"] == [run.export_job_id]


def v2_request(audience: str = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05", **extra) -> dict:
    return {
        "activation_info": {"b0780cb5-2bb7-4409-bf2c-c625ca818588": [audience]},
        "version": 2,
        "segment_job": False,
        **extra,
    }


def test_a_v2_chain_without_segment_or_export_steps_succeeds_with_one_activation_post(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker())
    run_id = start_activation(v2_request())
    (run,) = wait_for_runs(stack, [run_id])
    assert run.status == "succeeded", (run.error, run.timeline)
    assert stack.posts() == {"/ims/token/v3": 1, ADHOC_POST: 1}
    (adhoc,) = stack.journal("POST", ADHOC_POST)
    assert "exportIds" not in adhoc["body"]
    assert adhoc["headers"].get("Accept") == "application/vnd.adobe.adhoc.activation+json; version=2"
    # The task id the ledger names for a run's step (cancel marks it revoked in Flower) is the one it ran under.
    assert run.task_id == f"{run_id}.poll_activation.0"
    stack.wait_log(f"activation.poll_activation[{run.task_id}] succeeded")


def test_the_same_idempotency_key_returns_the_same_run_and_starts_nothing_new(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker())
    first = start_activation(v2_request(idempotency_key="nightly-2026-11-28"))
    second = start_activation(v2_request(idempotency_key="nightly-2026-11-28"))
    assert first == second
    wait_for_runs(stack, [first])
    assert stack.posts()[ADHOC_POST] == 1


def test_cancel_deletes_the_in_flight_segment_job_and_no_later_step_runs(make_stack):
    from aep_activator.aepsim.config import SimulatorConfig
    from aep_activator.tasks import cancel_run
    from aep_activator.tasks.runtime import runtime

    stack = make_stack(SimulatorConfig(speed=5, seed=1))  # a 13-minute job takes ~2.6 minutes: still running
    stack.wait_worker_ready(stack.start_worker())
    run_id = start_activation(example())
    ledger = runtime().ledger
    import time

    deadline = time.monotonic() + 20
    while ledger.get(run_id).step != "poll_segment_job" and time.monotonic() < deadline:
        time.sleep(0.05)
    run = cancel_run(run_id)
    assert run.status == "cancelled"
    deletes = stack.journal("DELETE", "/data/core/ups/segment/jobs/{id}")
    assert len(deletes) == 1 and deletes[0]["path"].endswith(run.segment_job_id)
    time.sleep(2.5)  # several poll intervals: the fence must drop every later message of the run
    assert ledger.get(run_id).status == "cancelled"
    assert EXPORT_POST not in stack.posts()


def test_resume_restarts_a_failed_run_at_the_failed_jobs_create_step(make_stack):
    from aep_activator.aepsim.config import FailureRates, SimulatorConfig
    from aep_activator.tasks import resume_run

    stack = make_stack(
        SimulatorConfig(speed=600, seed=2, failure_rates=FailureRates(export_job=1.0)),
        env={"QUOTA_SEGMENT_JOBS_PER_DAY": "5"},
    )
    stack.wait_worker_ready(stack.start_worker())
    run_id = start_activation(example())
    (failed,) = wait_for_runs(stack, [run_id])
    assert failed.status == "failed" and failed.step == "poll_export_job" and "FAILED" in (failed.error or "")
    stack.simulator.ctx.apply_config({"failure_rates": {"export_job": 0.0}})
    resumed = resume_run(run_id)
    assert resumed.step == "create_export_job"
    (run,) = wait_for_runs(stack, [run_id])
    assert run.status == "succeeded", (run.error, run.timeline)
    assert run.segment_job_id == failed.segment_job_id, "the segment job is reused, not re-created"
    assert run.export_job_id != failed.export_job_id
    assert stack.posts() == {"/ims/token/v3": 1, SEGMENT_POST: 1, EXPORT_POST: 2, ADHOC_POST: 1}


def test_a_job_past_its_deadline_is_cancelled_and_the_run_fails_saying_so(make_stack):
    from aep_activator.aepsim.config import SimulatorConfig

    stack = make_stack(SimulatorConfig(speed=1, seed=4), env={"POLL_SEGMENT_DEADLINE_S": "1.5"})
    stack.wait_worker_ready(stack.start_worker())
    run_id = start_activation(example())
    (run,) = wait_for_runs(stack, [run_id], timeout_s=30)
    assert run.status == "failed" and run.step == "poll_segment_job"
    assert "after 2s: cancelled" in (run.error or "") or "after 1s: cancelled" in (run.error or ""), run.error
    (delete,) = stack.journal("DELETE", "/data/core/ups/segment/jobs/{id}")
    assert delete["path"].endswith(run.segment_job_id)
    assert EXPORT_POST not in stack.posts()

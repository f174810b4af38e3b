"""What happens when things break: faults, lost answers, quota races, crashes, shared audiences.

Each test runs real `celery worker` processes against real Redis and the simulator over HTTP.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from aep_activator.aepsim.config import FaultSettings, Guardrails, SimulatorConfig
from aep_activator.tasks import runtime, start_activation
from aep_activator.tasks.producer import quota_usage
from tests.integration.conftest import EXAMPLE, wait_for_runs
from tests.integration.test_chain import ADHOC_POST, EXPORT_POST, SEGMENT_POST, v2_request

pytestmark = pytest.mark.integration

AUDIENCES = [
    "4afe34ae-8c98-4513-8a1d-67ccaa54bc05",
    "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c",
]


def example(**overrides) -> dict:
    return {**json.loads(Path(EXAMPLE).read_text()), **overrides}


def assert_one_post_per_run(stack, n_runs: int, *, segment: bool = True, export: bool = True) -> None:
    posts = stack.posts()
    assert posts.get(ADHOC_POST, 0) == n_runs, posts
    assert posts.get(SEGMENT_POST, 0) == (n_runs if segment else 0), posts
    assert posts.get(EXPORT_POST, 0) == (n_runs if export else 0), posts


def test_with_20_percent_5xx_and_429_every_run_ends_and_no_post_is_duplicated(make_stack):
    faults = FaultSettings(error_5xx_rate=0.1, rate_429=0.1, retry_after_s=0)
    stack = make_stack(
        SimulatorConfig(speed=600, seed=11, faults=faults, guardrails=Guardrails(segment_jobs_per_day_per_sandbox=50)),
        env={"QUOTA_SEGMENT_JOBS_PER_DAY": "50", "RETRY_MAX": "30"},
    )
    stack.wait_worker_ready(stack.start_worker(concurrency=4))
    run_ids = [start_activation(example()) for _ in range(6)]
    runs = wait_for_runs(stack, run_ids, timeout_s=120)
    assert {r.status for r in runs} <= {"succeeded", "failed"}
    # A 5xx to a POST is an unknown outcome: the step only looks until AEP's lists prove the POST was not
    # accepted, so each step is accepted at most once per run, and never re-sent while unknown.
    posts = stack.accepted_posts()
    for template in (SEGMENT_POST, EXPORT_POST, ADHOC_POST):
        assert posts.get(template, 0) <= len(run_ids), (template, posts)
    assert stack.post_promise_violations() == []
    done = [r for r in runs if r.status == "succeeded"]
    # Identical runs look alike to "look before create": each must still own AEP jobs of its own.
    assert len({r.segment_job_id for r in done}) == len(done)
    assert len({r.export_job_id for r in done}) == len(done)
    assert len({o["run_id"] for r in done for o in r.flow_runs}) == len(done)
    assert posts.get(ADHOC_POST, 0) >= len(done)
    injected = [e for e in stack.journal() if e["status"] in (429, 500, 502, 503)]
    assert injected, "the fault injection did not fire; the test proves nothing"
    assert sum(r.status == "succeeded" for r in runs) >= 1


def test_a_post_whose_answer_is_lost_is_never_sent_twice(make_stack):
    hang = FaultSettings(hang_rate=1.0)
    config = SimulatorConfig(
        speed=600,
        seed=3,
        hang_s=2.0,
        endpoint_faults={f"POST {SEGMENT_POST}": hang, f"POST {EXPORT_POST}": hang, f"POST {ADHOC_POST}": hang},
    )
    stack = make_stack(config, env={"AEP_READ_TIMEOUT_S": "1"})
    stack.wait_worker_ready(stack.start_worker())
    run_id = start_activation(example())
    (run,) = wait_for_runs(stack, [run_id], timeout_s=90)
    assert run.status == "succeeded", (run.error, run.timeline)
    assert_one_post_per_run(stack, 1)
    assert [e["status"] for e in stack.journal("POST", ADHOC_POST)] == ["hung"]
    adopted = [e for e in run.timeline if e["event"] == "adopted"]
    assert len(adopted) == 3, run.timeline


def test_thirty_runs_against_a_quota_of_twenty_activate_exactly_twenty_and_the_rest_wait(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=5), env={"QUOTA_ADHOC_PER_DAY": "20"})
    stack.wait_worker_ready(stack.start_worker(concurrency=4))
    run_ids = [start_activation(v2_request(AUDIENCES[i % 2])) for i in range(30)]
    ledger = runtime.runtime().ledger
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        records = [ledger.get(r) for r in run_ids]
        done = [r for r in records if r and r.status == "succeeded"]
        waiting = [r for r in records if r and r.status == "waiting" and "quota" in (r.waiting_reason or "")]
        if len(done) == 20 and len(waiting) == 10:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"expected 20 succeeded and 10 waiting: {[(r.status, r.waiting_reason) for r in records]}")
    time.sleep(1.0)  # give any overshooting POST the chance to show up
    assert stack.posts().get(ADHOC_POST) == 20
    (usage,) = [u for u in quota_usage() if u.name == "adhoc"]
    assert (usage.used, usage.remaining) == (20, 0)
    for r in waiting:
        assert r.wait_until is not None and r.wait_until >= usage.reset_at


def test_two_runs_for_the_same_audience_never_overlap(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=9))
    stack.wait_worker_ready(stack.start_worker(concurrency=4))
    run_ids = [start_activation(v2_request(AUDIENCES[0])) for _ in range(4)]
    runs = wait_for_runs(stack, run_ids, timeout_s=60)
    assert all(r.status == "succeeded" for r in runs), [(r.status, r.error) for r in runs]
    answers = [e["status"] for e in stack.journal("POST", ADHOC_POST)]
    assert answers == [200] * 4, "AEP answered 'Run already going on': two runs overlapped"
    spans = sorted((r.flow_runs[0]["run_id"], ev_t(r, "activated"), ev_t(r, "succeeded")) for r in runs)
    spans.sort(key=lambda s: s[1])
    for (_, _, end), (_, start, _) in itertools.pairwise(spans):
        assert start >= end - 0.05, spans


def ev_t(run, event: str) -> float:
    return next(e["t"] for e in run.timeline if e["event"] == event)


def test_a_worker_killed_mid_run_and_restarted_finishes_the_run_without_a_duplicate_post(make_stack):
    # A slow segment job keeps the run in flight while we kill the worker.
    config = SimulatorConfig(speed=100, seed=13)
    stack = make_stack(config, env={"VISIBILITY_TIMEOUT_S": "8", "TASK_TIME_LIMIT_S": "6"})
    worker = stack.start_worker()
    stack.wait_worker_ready(worker)
    run_id = start_activation(example())
    ledger = runtime.runtime().ledger
    deadline = time.monotonic() + 30
    while (ledger.get(run_id).segment_job_id is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.kill_worker(worker)
    time.sleep(1.0)
    stack.wait_worker_ready(stack.start_worker(name="w2"))
    (run,) = wait_for_runs(stack, [run_id], timeout_s=90)
    assert run.status == "succeeded", (run.error, run.timeline)
    assert_one_post_per_run(stack, 1)


def test_a_producer_that_dies_after_recording_its_run_and_before_publishing_loses_nothing(make_stack):
    # The producer's record, carrier and idempotency key are one script; its wake-up message is never
    # sent here (the producer died, or the publish failed): the watchdog publishes the step.
    from aep_activator.aep.pipeline.request import ActivationRequest

    stack = make_stack(SimulatorConfig(speed=600, seed=21))
    stack.wait_worker_ready(stack.start_worker())
    rt = runtime.runtime()
    req = ActivationRequest.model_validate(v2_request(AUDIENCES[0], idempotency_key="dies-before-publish"))
    created = rt.ledger.create(req.wire(), started_by="t", first_step=rt.plan.first(req).name, run_id="r-unpublished",
                               idempotency_key=req.idempotency_key)  # fmt: skip
    assert created.verdict == "created" and rt.redis.llen(stack.queue) == 0
    (run,) = wait_for_runs(stack, [created.run_id], timeout_s=30)
    assert run.status == "succeeded", (run.error, run.timeline)
    assert run.recoveries == 1 and any(e["event"] == "recovered" for e in run.timeline)
    assert start_activation(v2_request(AUDIENCES[0], idempotency_key="dies-before-publish")) == created.run_id
    assert stack.posts().get(ADHOC_POST) == 1

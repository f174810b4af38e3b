"""The contract of each domain step, one execution at a time, through the real runner.

Every execution is ``tasks.runner.execute_once`` (the fence, the lease, the intent and quota scripts,
the leave) on the real Redis, against the simulator's dispatch in-process (tests/stepkit.py): no
Celery, no server, no sleep. One ``ManualClock`` is AEP's and the ledger's, so a test moves time.
POSTs are counted as *attempts* in the simulator's journal, whatever their answer.

The retry policy (tasks/runner.py), branch by branch: ``Done`` publishes the next step; ``Wait``
the same step after its delay; ``RateLimited`` after ``Retry-After``; another ``TransientError``
after a backoff, at most ``RETRY_MAX`` in a row; ``JobFailed``, ``DeadlineExceeded``,
``PermanentError``, ``PreflightRefused``, ``QuotaExhausted``, ``Unaccounted`` and an unexpected
exception fail the run with their kind; Redis errors leave the carrier for the watchdog.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from aep_activator.aep.api import paths
from aep_activator.aep.coordination.runs import FailureKind, RunRecord, RunStatus
from aep_activator.aep.pipeline.plan import PLAN, Step
from aep_activator.aep.pipeline.scopes import Quota, specs
from aep_activator.aep.pipeline.steps.base import StepContext, WaitKind
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.tasks.runner import Executed, execute_once
from tests.stepkit import Kit, inprocess_kit, new_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "activation-request.json").read_text())
DATAFLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUDIENCE = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
V2 = {"activation_info": {DATAFLOW: [AUDIENCE]}, "version": 2, "segment_job": False}

SEGMENT_POST, EXPORT_POST, ADHOC_POST = paths.SEGMENT_JOBS, paths.EXPORT_JOBS, paths.ADHOC_RUN
CREATES = [
    pytest.param("create_segment_job", SEGMENT_POST, "segment_job_id", id="segment_job"),
    pytest.param("create_export_job", EXPORT_POST, "export_job_id", id="export_job"),
    pytest.param("run_activation", ADHOC_POST, "flow_runs", id="adhoc"),
]


@pytest.fixture
def make_kit(redis_url: str, key_prefix: str) -> Iterator[Callable[..., Kit]]:
    kits: list[Kit] = []

    def make(sim_config: SimulatorConfig | None = None, **settings: Any) -> Kit:
        kit = inprocess_kit(redis_url, key_prefix, sim_config, **settings)
        kits.append(kit)
        return kit

    yield make
    for kit in kits:
        kit.rt.redis.close()


@pytest.fixture
def kit(make_kit: Callable[..., Kit]) -> Kit:
    return make_kit()


def drive(kit: Kit, run_id: str, *, until: str | None = None, max_steps: int = 300) -> RunRecord:
    """Execute the run's current step again and again (moving the clock over each wait) until it
    ends or reaches the step ``until``."""
    for _ in range(max_steps):
        record = kit.record(run_id)
        if record.terminal or record.step == until:
            return record
        done = kit.step(run_id)
        assert done.verdict == "left", (record.step, done)
        nxt = done.change.next if done.change else None
        if nxt is not None and nxt.same_step:
            kit.clock.advance(max(nxt.delay_s, 30.0))
    raise AssertionError(f"run {run_id} not at {until or 'its end'} after {max_steps} executions")


def waited(done: Executed) -> tuple[str, float]:
    """The kind and delay of the wait an execution left with (it must be one)."""
    assert done.verdict == "left" and done.change is not None and done.change.next is not None, done
    assert done.change.next.same_step, done.change
    return str(done.change.set["wait_kind"]), done.change.next.delay_s


def events(record: RunRecord, step: str) -> list[str]:
    return [e["event"] for e in record.timeline if e["step"] == step]


def used(kit: Kit, quota: Quota, template: str | None = None) -> tuple[int, int]:
    """(used, pending) slots of the deployment's sandbox window for ``quota``: now, or when the last
    POST to ``template`` was sent (a test that moved the clock by hours may have crossed a UTC midnight)."""
    s = kit.rt.settings
    (spec, *_) = specs(quota, kit.rt.step_config.quotas, org_id=s.aep_org_id or "", sandbox=s.aep_sandbox_name)
    at = kit.journal("POST", template)[-1]["time"] if template else kit.clock.now()
    usage = kit.rt.quotas.usage(spec, at)
    return usage.used, usage.pending


# --- happy paths ----------------------------------------------------------------------------------------


def test_the_v1_chain_runs_each_step_of_the_plan_in_order_and_posts_each_create_once(kit: Kit) -> None:
    run_id = new_run(kit.rt, EXAMPLE)
    visited: list[str] = []
    for _ in range(300):
        record = kit.record(run_id)
        if record.terminal:
            break
        if not visited or visited[-1] != record.step:
            visited.append(record.step)
        done = kit.step(run_id)
        if done.change and done.change.next and done.change.next.same_step:
            kit.clock.advance(max(done.change.next.delay_s, 30.0))
    assert record.status is RunStatus.SUCCEEDED, record.timeline
    assert visited == [s.name for s in PLAN.steps]
    assert (kit.posts(SEGMENT_POST), kit.posts(EXPORT_POST), kit.posts(ADHOC_POST)) == (1, 1, 1)
    assert record.segment_job_id and record.export_job_id and record.flow_runs
    assert used(kit, Quota.SEGMENT_JOBS, SEGMENT_POST) == (1, 0) and used(kit, Quota.ADHOC, ADHOC_POST) == (1, 0)
    assert events(record, "poll_activation")[-1] == "succeeded"


def test_a_v2_request_without_a_segment_job_runs_only_the_activation_steps(kit: Kit) -> None:
    run_id = new_run(kit.rt, V2)
    assert kit.record(run_id).step == "run_activation"
    record = drive(kit, run_id)
    assert record.status is RunStatus.SUCCEEDED
    assert (kit.posts(SEGMENT_POST), kit.posts(EXPORT_POST), kit.posts(ADHOC_POST)) == (0, 0, 1)
    (post,) = kit.journal("POST", ADHOC_POST)
    assert "exportIds" not in post["body"]


@pytest.mark.parametrize(("step", "template", "field"), CREATES)
def test_a_create_step_run_twice_after_its_answer_posts_nothing_more(kit: Kit, step: str, template: str,
                                                                       field: str) -> None:  # fmt: skip
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until=step)
    done = kit.step(run_id)
    assert done.change is not None and done.change.next is not None and done.change.next.publish
    after = kit.record(run_id)
    assert getattr(after, field) and step not in after.intents
    # A redelivered wake-up of the same step carries an old carrier: the fence drops it.
    assert execute_once(kit.rt, PLAN[step], run_id, done.seq - 1).verdict == "dropped"
    assert kit.posts(template) == 1


# --- a lost answer: look before you create -------------------------------------------------------------


@pytest.mark.parametrize(("step", "template", "field"), CREATES)
def test_a_post_whose_answer_was_lost_is_found_and_adopted_and_never_sent_again(
    kit: Kit, step: str, template: str, field: str
) -> None:
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until=step)
    kit.faults(f"POST {template}", hang_rate=1.0)  # AEP does the work, the answer never comes
    kind, _ = waited(kit.step(run_id))
    kit.faults(f"POST {template}")
    lost = kit.record(run_id)
    assert kind == WaitKind.LOOK and step in lost.intents and "outcome-unknown" in events(lost, step)
    assert kit.posts(template) == 1
    record = drive(kit, run_id)
    assert record.status is RunStatus.SUCCEEDED, record.timeline
    assert "adopted" in events(record, step)
    assert kit.posts(template) == 1, "the lost POST's job was adopted, not created again"
    (post,) = kit.journal("POST", template)
    assert post["status"] == "hung"
    if field != "flow_runs":
        assert post["created"] == getattr(record, field)


@pytest.mark.parametrize("fault", ["drop_rate", "error_5xx_rate"])
@pytest.mark.parametrize(("step", "template", "field"), CREATES)
def test_a_post_that_aep_did_not_accept_is_sent_again_only_once_its_lists_prove_it(
    kit: Kit, step: str, template: str, field: str, fault: str
) -> None:
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until=step)
    kit.faults(f"POST {template}", **{fault: 1.0})  # answered before AEP did anything; the client cannot tell
    assert waited(kit.step(run_id))[0] == WaitKind.LOOK
    kit.faults(f"POST {template}")
    kit.clock.advance(1.0)
    # Not long enough after the POST for its job to show: only look again.
    assert waited(kit.step(run_id))[0] == WaitKind.LOOK
    assert kit.posts(template) == 1
    kit.clock.advance(kit.rt.settings.look_settle_s)
    done = kit.step(run_id)
    assert done.change is not None and done.change.next is not None and done.change.next.publish
    first, second = kit.journal("POST", template)
    assert second["time"] - first["time"] >= kit.rt.settings.look_settle_s
    assert getattr(kit.record(run_id), field)
    assert drive(kit, run_id).status is RunStatus.SUCCEEDED
    if step == "create_segment_job":
        assert used(kit, Quota.SEGMENT_JOBS, SEGMENT_POST) == (1, 0), "the refused POST's slot was refunded"


def test_a_lost_answers_look_is_timed_by_the_servers_clock_not_this_hosts(kit: Kit) -> None:
    # This host's clock runs 10,000 s ahead of the server's (Redis TIME, here the kit's clock). Were the
    # look's start dated by the host, the lists would never settle and the run would look until it failed.
    kit.clock.set(kit.clock.now() - 10_000)
    run_id = new_run(kit.rt, EXAMPLE)
    kit.faults(f"POST {SEGMENT_POST}", drop_rate=1.0)
    kind, delay = waited(kit.step(run_id))
    kit.faults(f"POST {SEGMENT_POST}")
    lost = kit.record(run_id)
    assert kind == WaitKind.LOOK and lost.wait_since == pytest.approx(kit.clock.now(), abs=1)
    assert lost.wait_until == pytest.approx(kit.clock.now() + delay, abs=1)
    kit.clock.advance(kit.rt.settings.look_settle_s + 1)
    done = kit.step(run_id)  # the lists prove the POST absent: it is sent again
    assert done.change is not None and done.change.next is not None and done.change.next.publish, done
    assert kit.posts(SEGMENT_POST) == 2


def test_a_lost_answer_that_aeps_lists_cannot_settle_in_time_fails_the_run_as_unaccounted(make_kit) -> None:
    kit = make_kit(wait_deadline_s=1)
    run_id = new_run(kit.rt, EXAMPLE)
    kit.faults(f"POST {SEGMENT_POST}", drop_rate=1.0)
    assert waited(kit.step(run_id))[0] == WaitKind.LOOK
    kit.clock.advance(2.0)  # past the wait deadline, before the lists may prove anything
    kit.step(run_id)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None
    assert record.failure.kind is FailureKind.UNACCOUNTED and record.failure.step == "create_segment_job"
    assert kit.posts(SEGMENT_POST) == 1


# --- AEP's "Run already going on" -----------------------------------------------------------------------


def test_aeps_run_already_going_on_refunds_the_slot_waits_for_that_run_then_posts(kit: Kit) -> None:
    # Another deployment with our client id activates the same audience: AEP refuses ours until it ends.
    other = kit.rt.client.activations.run({DATAFLOW: [AUDIENCE]}, version=2)
    blocker = other.order[0].run_id
    run_id = new_run(kit.rt, V2)
    kind, _ = waited(kit.step(run_id))
    record = kit.record(run_id)
    assert kind == WaitKind.CONFLICT and record.blocker == blocker and record.status is RunStatus.WAITING
    assert used(kit, Quota.ADHOC) == (0, 0), "a refused POST spends no slot"
    assert kit.posts(ADHOC_POST) == 2
    assert waited(kit.step(run_id))[0] == WaitKind.CONFLICT  # the blocker still runs: no POST
    assert kit.posts(ADHOC_POST) == 2
    kit.clock.advance(kit.sim.config.durations.activation_run_s + 1)
    record = drive(kit, run_id)
    assert record.status is RunStatus.SUCCEEDED and kit.posts(ADHOC_POST) == 3
    assert blocker not in [o["run_id"] for o in record.flow_runs]


# --- quotas ---------------------------------------------------------------------------------------------


def test_a_used_up_segment_job_quota_makes_the_run_wait_for_the_next_window_posting_nothing(make_kit) -> None:
    kit = make_kit(quota_segment_jobs_per_day=1)
    first = new_run(kit.rt, EXAMPLE)
    drive(kit, first, until="poll_segment_job")
    second = new_run(kit.rt, EXAMPLE)
    kind, delay = waited(kit.step(second))
    record = kit.record(second)
    assert kind == WaitKind.QUOTA and record.status is RunStatus.WAITING and not record.intents
    (spec, *_) = specs(Quota.SEGMENT_JOBS, kit.rt.step_config.quotas, org_id=kit.rt.settings.aep_org_id or "",
                       sandbox="prod")  # fmt: skip
    _, window_end = spec.window.containing(kit.clock.now())
    assert delay == pytest.approx(window_end - kit.clock.now() + 1.0, abs=2.0)
    assert kit.posts(SEGMENT_POST) == 1


def test_just_after_midnight_a_run_waits_for_the_edge_of_the_full_window_not_for_a_window_already_open(
    make_kit,
) -> None:
    kit = make_kit(quota_segment_jobs_per_day=1)
    edge = kit.rt.quotas.edge_s
    midnight = (kit.clock.now() // 86400 + 1) * 86400
    kit.clock.set(midnight - edge - 60)  # the first POST counts in its day alone (not within the edge)
    drive(kit, new_run(kit.rt, EXAMPLE), until="poll_segment_job")
    kit.clock.set(midnight + 10)
    second = new_run(kit.rt, EXAMPLE)
    kind, delay = waited(kit.step(second))
    reason = kit.record(second).waiting_reason or ""
    assert kind == WaitKind.QUOTA and delay == pytest.approx(edge - 10 + 1.0, abs=0.5), (delay, reason)
    assert "window that ended at" in reason and "QUOTA_EDGE_S" in reason, reason
    assert "opens at" not in reason, "the window that opened at midnight is open already"
    kit.clock.advance(delay)
    drive(kit, second, until="poll_segment_job")
    assert kit.posts(SEGMENT_POST) == 2, "its POST went out once the edge had passed"


def test_a_used_up_quota_fails_a_run_that_asked_to_fail_and_posts_nothing(make_kit) -> None:
    kit = make_kit(quota_adhoc_per_day=1)
    assert drive(kit, new_run(kit.rt, V2)).status is RunStatus.SUCCEEDED
    run_id = new_run(kit.rt, {**V2, "on_quota": "fail"})
    kit.step(run_id)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None
    assert record.failure.kind is FailureKind.QUOTA and kit.posts(ADHOC_POST) == 1


# --- deadlines and AEP's failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "setting", "delete"),
    [
        ("poll_segment_job", "poll_segment_deadline_s", paths.SEGMENT_JOB),
        ("poll_export_job", "poll_export_deadline_s", paths.EXPORT_JOB),
        ("poll_activation", "poll_activation_deadline_s", None),
    ],
)
def test_a_poll_past_its_deadline_cancels_the_job_and_fails_the_run_as_deadline(
    make_kit, step: str, setting: str, delete: str | None
) -> None:
    kit = make_kit(**{setting: 10})
    run_id = new_run(kit.rt, EXAMPLE)
    record = drive(kit, run_id, until=step)
    kit.step(run_id)  # the job is just created: a wait
    kit.clock.advance(11)
    kit.step(run_id)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None, record.timeline
    assert record.failure.kind is FailureKind.DEADLINE and record.failure.step == step
    assert len(kit.journal("DELETE", delete)) == (1 if delete else 0)


def test_the_last_wait_of_a_geometric_schedule_ends_at_the_deadline_not_a_cap_later(make_kit) -> None:
    kit = make_kit(poll_adaptive=False, poll_jitter=0, poll_segment_initial_s=30, poll_factor=2.0,
                   poll_segment_deadline_s=50)
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until="poll_segment_job")
    assert waited(kit.step(run_id)) == (WaitKind.AEP, pytest.approx(30, abs=0.5))
    kit.clock.advance(30)
    kind, delay = waited(kit.step(run_id))  # the schedule says 60 s; the deadline comes in 20
    assert kind == WaitKind.AEP and delay == pytest.approx(20, abs=0.5)


@pytest.mark.parametrize(
    ("creation_ms", "believed"),
    [
        pytest.param(1_000_000_900_000, True, id="plausible"),
        pytest.param(1_000_000_000_000 + 86_400_000, False, id="a-day-ahead"),
        pytest.param(1_000_000_000, False, id="in-seconds-not-ms"),
        pytest.param(1, False, id="1970"),
        pytest.param(10**400, False, id="a-huge-integer"),
        pytest.param(None, False, id="absent"),
    ],
)
def test_a_job_dated_outside_its_run_is_timed_from_the_run_so_its_deadline_still_comes(
    creation_ms: int | None, believed: bool
) -> None:
    """A future ``creationTime`` would keep a job polled past its deadline forever; one in the past
    (seconds read as ms, 1970) would cancel a healthy job at its first poll."""
    from types import SimpleNamespace

    from aep_activator.aep.pipeline.steps.polls import job_started

    created, now = 1_000_000_000.0 - 600, 1_000_001_000.0
    ctx: Any = SimpleNamespace(run=SimpleNamespace(created_at=created), now=lambda: now)
    assert job_started(ctx, creation_ms) == (creation_ms / 1000 if believed and creation_ms else created)


@pytest.mark.parametrize(
    ("rate", "step"),
    [("segment_job", "poll_segment_job"), ("export_job", "poll_export_job"), ("activation_run", "poll_activation")],
)
def test_an_aep_job_that_ends_failed_fails_the_run_as_aep_job_failed(make_kit, rate: str, step: str) -> None:
    kit = make_kit(SimulatorConfig(seed=1, failure_rates={rate: 1.0}))
    record = drive(kit, new_run(kit.rt, EXAMPLE))
    assert record.status is RunStatus.FAILED and record.failure is not None
    assert record.failure.kind is FailureKind.AEP_JOB_FAILED and record.failure.step == step


# --- the retry policy -----------------------------------------------------------------------------------


def test_a_429_waits_for_its_retry_after_without_spending_the_error_budget(kit: Kit) -> None:
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until="poll_segment_job")
    kit.faults(f"GET {paths.SEGMENT_JOB}", rate_429=1.0, retry_after_s=7)
    kind, delay = waited(kit.step(run_id))
    assert kind == WaitKind.RATE_LIMIT and delay == 7
    assert kit.record(run_id).errors == 0


def test_transient_errors_back_off_count_up_and_reset_on_success(make_kit) -> None:
    kit = make_kit(retry_max=3)
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until="poll_segment_job")
    kit.faults(f"GET {paths.SEGMENT_JOB}", error_5xx_rate=1.0)
    delays = []
    for n in (1, 2):
        kind, delay = waited(kit.step(run_id))
        assert kind == WaitKind.RETRY and kit.record(run_id).errors == n
        delays.append(delay)
    assert 0 < delays[0] <= kit.rt.settings.retry_cap_s and 0 < delays[1] <= kit.rt.settings.retry_cap_s
    kit.faults(f"GET {paths.SEGMENT_JOB}")
    assert waited(kit.step(run_id))[0] == WaitKind.AEP  # the job is still running
    assert kit.record(run_id).errors == 0


def test_transient_errors_beyond_retry_max_in_a_row_fail_the_run_as_retries(make_kit) -> None:
    kit = make_kit(retry_max=2)
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until="poll_segment_job")
    kit.faults(f"GET {paths.SEGMENT_JOB}", error_5xx_rate=1.0)
    for _ in range(3):
        kit.step(run_id)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None
    assert record.failure.kind is FailureKind.RETRIES and "gave up after 2 retries" in record.failure.message


def test_a_refused_post_fails_the_run_as_permanent_and_refunds_its_slot(kit: Kit) -> None:
    run_id = new_run(kit.rt, {**EXAMPLE, "segment_ids": ["00000000-0000-4000-8000-000000000000"]})
    kit.step(run_id)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None, record.timeline
    assert record.failure.kind is FailureKind.PERMANENT
    assert kit.posts(SEGMENT_POST) == 1 and used(kit, Quota.SEGMENT_JOBS) == (0, 0)


def test_an_audience_not_mapped_to_its_dataflow_fails_the_preflight_spending_nothing(kit: Kit) -> None:
    run_id = new_run(kit.rt, {**V2, "activation_info": {DATAFLOW: ["00000000-0000-4000-8000-000000000001"]}})
    kit.step(run_id)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None
    assert record.failure.kind is FailureKind.PREFLIGHT
    assert kit.posts(ADHOC_POST) == 0 and used(kit, Quota.ADHOC) == (0, 0)


def test_an_unexpected_exception_fails_the_run_as_a_bug(kit: Kit) -> None:
    def broken(ctx: StepContext) -> Any:
        raise KeyError("no such field")

    run_id = new_run(kit.rt, V2)
    execute_once(kit.rt, Step("run_activation", broken), run_id, kit.record(run_id).seq)
    record = kit.record(run_id)
    assert record.status is RunStatus.FAILED and record.failure is not None
    assert record.failure.kind is FailureKind.BUG and "KeyError" in record.failure.message


def test_a_redis_error_inside_a_step_leaves_the_run_open_with_its_carrier(kit: Kit) -> None:
    def redis_down(ctx: StepContext) -> Any:
        raise redis.ConnectionError("Connection refused")

    run_id = new_run(kit.rt, V2)
    before = kit.record(run_id)
    with pytest.raises(redis.ConnectionError):
        execute_once(kit.rt, Step("run_activation", redis_down), run_id, before.seq)
    after = kit.record(run_id)
    assert not after.terminal and after.step == "run_activation" and after.carrier


def test_a_job_seen_hours_after_it_ended_teaches_the_polls_aeps_duration_not_the_wait(make_kit) -> None:
    """The duration summary learns how long AEP took (its jobs' own end times), not how long until a
    poll saw the job done: a worker outage (here two hours between looks) would otherwise stretch every
    duration it covered, and every duration would carry its detection delay."""
    from aep_activator.aep.coordination.durations import DurationSummary

    kit = make_kit()
    run_id = new_run(kit.rt, EXAMPLE)
    for _ in range(50):
        if kit.record(run_id).terminal:
            break
        done = kit.step(run_id)
        nxt = done.change.next if done.change else None
        if nxt is not None and nxt.same_step:
            kit.clock.advance(2 * 3600)  # within every deadline, long after every simulated job's end
    assert kit.record(run_id).status is RunStatus.SUCCEEDED, kit.record(run_id).timeline
    state = kit.sim.state
    ((seg),), ((exp),), ((flow),) = state.segment_jobs.values(), state.export_jobs.values(), state.flow_runs.values()
    summary = DurationSummary(kit.rt.redis, kit.rt.keys, cache_s=0)
    sandbox = kit.rt.settings.aep_sandbox_name
    for kind, job in (("segment", seg), ("export", exp), ("activation", flow)):
        assert summary.recent(kind, sandbox) == [pytest.approx(job.ends_at - job.created, abs=0.01)], kind


@pytest.mark.parametrize(
    ("ends_ms", "seen_running", "expected"),
    [
        pytest.param((1_000_000_500_000, 1_000_000_600_000), None, 1_000_000_500.0, id="metrics-end"),
        pytest.param((None, 1_000_000_600_000), None, 1_000_000_600.0, id="update-time-when-no-metrics-end"),
        pytest.param((123_456_799_000, 1_000_000_600_000), None, 1_000_000_600.0, id="metrics-end-before-the-start"),
        pytest.param((1_000_001_100_000, None), None, 1_000_001_000.0, id="after-now-within-the-skew: now"),
        pytest.param((1_000_000_000_001, None), 1_000_000_400.0, 1_000_000_400.0,
                     id="before-a-poll-saw-it-running: then"),
        pytest.param((1_000_000_000_000 + 86_400_000, None), None, None, id="a-day-ahead"),
        pytest.param((1_000_000_500, None), None, None, id="in-seconds-not-ms"),
        pytest.param((1_000_000_000_000, 1_000_000_000_000), None, None, id="at-the-start"),
        pytest.param((10**400, None), None, None, id="a-huge-integer"),
        pytest.param((None, None), None, None, id="absent"),
    ],
)
def test_a_finished_jobs_end_is_aeps_when_plausible_else_when_it_was_seen(
    ends_ms: tuple[int | None, int | None], seen_running: float | None, expected: float | None
) -> None:
    """Adobe's own export example ends in 1973, decades before the job's creation."""
    from types import SimpleNamespace

    from aep_activator.aep.pipeline.steps.polls import job_ended

    started, now = 1_000_000_000.0, 1_000_001_000.0
    run = SimpleNamespace(wait_kind="aep" if seen_running else None, wait_since=seen_running)
    ctx: Any = SimpleNamespace(now=lambda: now, run=run)
    assert job_ended(ctx, started, *ends_ms) == (now if expected is None else expected)


@pytest.mark.parametrize(
    ("took", "seen_running", "expected"),
    [
        pytest.param([120.0, 150.5], None, 150.5, id="the-slowest-flow-run"),
        pytest.param([900.0], None, 900.0, id="longer-than-since-the-activation: adopted after a lost answer"),
        pytest.param([120.0, None], None, 600.0, id="one-undated"),
        pytest.param([120.0, 30_000.0], None, 600.0, id="past-the-deadline"),
        pytest.param([-1.0], None, 600.0, id="negative"),
        pytest.param(["120"], None, 600.0, id="not-a-number"),
        pytest.param([True], None, 600.0, id="a-boolean"),
        pytest.param([0.002], 1_000_000_300.0, 300.0, id="shorter-than-a-poll-saw-it-running"),
    ],
)
def test_an_activations_duration_is_its_slowest_flow_run_when_aep_dated_them_all(
    took: list[Any], seen_running: float | None, expected: float
) -> None:
    from types import SimpleNamespace

    from aep_activator.aep.pipeline.steps.polls import activation_took

    run = SimpleNamespace(wait_kind="aep" if seen_running else None, wait_since=seen_running)
    ctx: Any = SimpleNamespace(now=lambda: 1_000_000_600.0, run=run)
    orders = [{"run_id": str(i), **({} if t is None else {"took": t})} for i, t in enumerate(took)]
    assert activation_took(ctx, orders, 1_000_000_000.0, 21_600.0) == expected
    # Adopted once over, no poll of ours timed them: only AEP's dates do, and without them nothing does.
    dated = all(isinstance(t, float) and 0 < t <= 21_600.0 for t in took)
    assert activation_took(ctx, orders, 1_000_000_000.0, 21_600.0, timed=False) == (expected if dated else None)


@pytest.mark.parametrize(
    ("completed_ms", "updated_ms", "expected"),
    [
        pytest.param(1_000_000_150_000, 1_000_000_160_000, 150.0, id="completed-at"),
        pytest.param(None, 1_000_000_160_000, 160.0, id="updated-at-when-no-completed-at"),
        pytest.param(1_000_000_000_000, 1_000_000_160_000, 160.0, id="completed-at-the-start: updated-at"),
        pytest.param(None, 1_000_000_000_000, None, id="updated-at-the-start"),
        pytest.param(10**400, None, None, id="a-huge-integer"),
        pytest.param(None, None, None, id="undated"),
    ],
)
def test_a_flow_runs_duration_is_aeps_end_less_its_creation(
    completed_ms: int | None, updated_ms: int | None, expected: float | None
) -> None:
    from aep_activator.aep.api.models.flow_runs import FlowRun
    from aep_activator.aep.pipeline.steps.polls import flow_run_took

    run = FlowRun.model_validate({
        "id": "r1", "createdAt": 1_000_000_000_000, "updatedAt": updated_ms,
        "metrics": {"durationSummary": {"completedAtUTC": completed_ms}, "statusSummary": {"status": "success"}},
    })  # fmt: skip
    assert flow_run_took(run) == expected


def test_a_flow_run_adopted_after_it_ended_teaches_the_polls_its_own_duration(kit: Kit) -> None:
    """Adopted once done, the run has no poll of ours to time it: only AEP's dates say how long it took."""
    from aep_activator.aep.coordination.durations import DurationSummary

    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until="run_activation")
    kit.faults(f"POST {ADHOC_POST}", hang_rate=1.0)
    assert waited(kit.step(run_id))[0] == WaitKind.LOOK
    kit.faults(f"POST {ADHOC_POST}")
    kit.clock.advance(2 * 3600)  # the flow run ends long before the look finds it
    record = drive(kit, run_id)
    assert record.status is RunStatus.SUCCEEDED and "adopted" in events(record, "run_activation"), record.timeline
    (flow,) = kit.sim.state.flow_runs.values()
    summary = DurationSummary(kit.rt.redis, kit.rt.keys, cache_s=0)
    assert summary.recent("activation", kit.rt.settings.aep_sandbox_name) == [
        pytest.approx(flow.ends_at - flow.created, abs=0.01)
    ]


def test_an_undated_flow_run_adopted_after_it_ended_teaches_the_polls_nothing(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without AEP's dates, the only time left is from the adoption to the poll that follows it: about
    nothing, a sample that would bring every later activation's polls forward to their first seconds."""
    from aep_activator.aep.coordination.durations import DurationSummary
    from aep_activator.aep.pipeline.steps import adhoc

    monkeypatch.setattr(adhoc, "flow_run_took", lambda run: None)  # AEP dated neither its end nor its creation
    run_id = new_run(kit.rt, EXAMPLE)
    drive(kit, run_id, until="run_activation")
    kit.faults(f"POST {ADHOC_POST}", hang_rate=1.0)
    assert waited(kit.step(run_id))[0] == WaitKind.LOOK
    kit.faults(f"POST {ADHOC_POST}")
    kit.clock.advance(2 * 3600)
    assert "adopted" in events(drive(kit, run_id, until="poll_activation"), "run_activation")
    kit.clock.advance(1.5)  # the poll that follows the adoption, a moment later
    record = drive(kit, run_id)
    assert record.status is RunStatus.SUCCEEDED, record.timeline
    summary = DurationSummary(kit.rt.redis, kit.rt.keys, cache_s=0)
    assert summary.recent("activation", kit.rt.settings.aep_sandbox_name) == []

"""One execution of one step: enter the run, call the domain step, leave with the next carrier.

The retry policy, declared once (what each outcome or error becomes):

- ``Done``: the next step of the plan, published now (or the run succeeds after its last step);
- ``Wait`` (an AEP job still running, a quota window, an audience, AEP's "Run already going on", a
  lost answer being looked for): the same step again after its delay;
- ``RateLimited``: the same step after ``Retry-After`` (or a backoff when AEP sent none);
- another ``TransientError``: the same step after a jittered backoff, at most ``RETRY_MAX`` in a row
  per step (``errors`` in the run record, a budget separate from polls);
- ``JobFailed``, ``DeadlineExceeded``, ``PermanentError``, ``QuotaExhausted`` (``on_quota="fail"``),
  ``Unaccounted`` and any unexpected exception: the run fails with a typed :class:`FailureKind`.

Whatever happens, the run never loses its carrier: the one written at entry (the lease's end)
stays until ``leave`` replaces it, so a soft or hard time limit, a dead worker or a Redis blip in
the middle leaves the watchdog to publish the step again (tasks/watchdog.py).

For Flower: a wait ends the task as RETRY whose exception reads the reason in plain words; a failed
run ends it as FAILURE with the reason; a message the fence drops ends it as IGNORED.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Task
from celery.exceptions import Ignore, Retry
from pydantic import ValidationError

from aep_activator.aep.api.client import tracing
from aep_activator.aep.api.errors import (
    AEPError,
    DeadlineExceeded,
    JobFailed,
    PermanentError,
    PreflightRefused,
    QuotaExhausted,
    RateLimited,
    TransientError,
    Unaccounted,
)
from aep_activator.aep.coordination.metrics import StepMeter
from aep_activator.aep.coordination.runs import (
    Change,
    Event,
    Failure,
    FailureKind,
    LeaseLost,
    Next,
    RunRecord,
    RunStatus,
)
from aep_activator.aep.pipeline.backoff import backoff
from aep_activator.aep.pipeline.plan import Step
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.steps.base import WAITING_ON_US, Done, RunCancelled, StepContext, Wait, WaitKind
from aep_activator.tasks import callbacks, crashpoints, logcontext, metering
from aep_activator.tasks.execution import LeasedExecution
from aep_activator.tasks.runtime import Runtime, runtime
from aep_activator.tasks.wakeups import publish

log = logging.getLogger(__name__)


class Waiting(Exception):
    """The reason a step waits. Its repr is the reason alone, so Flower's Exception field reads it."""

    def __repr__(self) -> str:
        return str(self.args[0]) if self.args else "waiting"


@dataclass
class Executed:
    """What one execution did: ``verdict`` ``dropped`` (the fence or a lost lease), ``left`` (with the
    change it wrote), and what the Celery task ends with (a result, or the exception to raise)."""

    verdict: str
    change: Change | None = None
    result: dict[str, Any] | BaseException | None = None
    seq: int = 0
    generation: int = 0


def execute_once(rt: Runtime, step: Step, run_id: str, seq: int) -> Executed:
    """Enter, run the domain step, leave: one execution, without Celery (tests call it directly)."""
    token = uuid.uuid4().hex
    entry = rt.ledger.enter(run_id, step.name, int(seq), token=token, lease_s=rt.lease_s)
    if entry.verdict != "ok" or entry.record is None:
        log.info("run %s: dropping %s seq %s (%s %s)", run_id, step.name, seq, entry.verdict, entry.detail)
        return Executed("dropped")
    record = entry.record
    with logcontext.bind(**logcontext.of_record(record, step.name)):
        return _execute_entered(rt, step, record, token, entry.now)


def _execute_entered(rt: Runtime, step: Step, record: RunRecord, token: str, server_now: float) -> Executed:
    run_id = record.run_id
    crashpoints.reached("entered", run_id, step.name)
    execution = LeasedExecution(rt, record, token, server_now)
    meter = StepMeter()
    result: dict[str, Any] | BaseException
    if record.cancel_requested:
        change, result = _cancelled(step, record)
    else:
        try:
            with metering.observe(meter):
                change, result = _outcome(rt, step, record, execution)
        except Ignore:
            return Executed("dropped")
    crashpoints.reached("answered", run_id, step.name)
    metering.count(meter, step.name, record, change, execution.now())
    lock_keys = rt.lock_keys(record) if change.finish_status else []
    left = rt.ledger.leave(run_id, token, change, lock_keys=lock_keys)
    if not left.ok:
        log.warning("run %s: %s lost its lease before it could record its outcome; dropped", run_id, step.name)
        return Executed("dropped")
    for aep_id, owner in left.conflicts.items():
        log.error("run %s: AEP job %s is also claimed by run %s; both share it", run_id, aep_id, owner)
    if change.finish_status is RunStatus.FAILED and change.failure is not None:
        log.error("run %s failed at %s (%s): %s", run_id, step.name, change.failure.kind, change.failure.message)
    crashpoints.reached("left", run_id, step.name)
    return Executed("left", change, result, left.seq, record.generation)


def execute(task: Task, step: Step, run_id: str, seq: int) -> dict[str, Any]:
    """Run ``step`` of ``run_id`` once, for the wake-up carrying carrier ``seq`` (the Celery task body)."""
    rt = runtime()
    done = execute_once(rt, step, run_id, seq)
    if done.verdict == "dropped" or done.change is None:
        raise Ignore()
    nxt = done.change.next
    if nxt is not None and nxt.publish:
        publish(task.app, rt, run_id, nxt.step, done.seq, done.generation)
        crashpoints.reached("published", run_id, step.name)
    if done.change.finish_status is not None:
        callbacks.run_ended(task.app, rt, run_id)  # never raises: a callback never fails a step
    if isinstance(done.result, BaseException):
        raise done.result
    return done.result or {}


def _outcome(
    rt: Runtime, step: Step, record: RunRecord, execution: LeasedExecution
) -> tuple[Change, dict[str, Any] | BaseException]:
    """The change to leave with, and what the Celery task ends with (a result, or what to raise)."""
    try:
        req = ActivationRequest.model_validate(record.request)
    except ValidationError as exc:
        return _fail(step, FailureKind.BUG, f"the run's request does not validate: {exc}", exc)
    ctx = StepContext(
        client=rt.client_for(req.sandbox), config=rt.step_config, run=record, request=req, step=step.name,
        locks=rt.locks_for(req.sandbox),
        quotas=rt.quotas, execution=execution, durations=rt.durations, min_samples=rt.settings.poll_summary_min,
        dataflows=rt.dataflows,
    )  # fmt: skip
    try:
        with tracing(f"{record.run_id}.{step.name}.{record.seq}"):
            outcome = step.run(ctx)
    except LeaseLost:
        log.info("run %s: %s stopped: another execution took the run over", record.run_id, step.name)
        raise Ignore() from None
    except RunCancelled:
        return _cancelled(step, record)
    except QuotaExhausted as exc:
        return _fail(step, FailureKind.QUOTA, exc.message, exc)
    except RateLimited as exc:
        delay = exc.retry_after_s if exc.retry_after_s is not None else _backoff(rt, record.errors)
        return _wait(step, record, Wait(max(delay, 0.5), f"AEP rate limit: {exc.message}", WaitKind.RATE_LIMIT),
                     execution.now())
    except TransientError as exc:
        errors = record.errors + 1
        if errors > rt.settings.retry_max:
            return _fail(step, FailureKind.RETRIES, f"gave up after {errors - 1} retries: {exc}", exc)
        reason = f"transient error {errors}/{rt.settings.retry_max}: {exc}"
        change, flower = _wait(step, record, Wait(_backoff(rt, errors - 1), reason, WaitKind.RETRY), execution.now())
        change.set["errors"] = errors
        return change, flower
    except DeadlineExceeded as exc:
        return _fail(step, FailureKind.DEADLINE, str(exc), exc)
    except JobFailed as exc:
        return _fail(step, FailureKind.AEP_JOB_FAILED, str(exc), exc)
    except Unaccounted as exc:
        return _fail(step, FailureKind.UNACCOUNTED, str(exc), exc)
    except PreflightRefused as exc:
        return _fail(step, FailureKind.PREFLIGHT, str(exc), exc)
    except PermanentError as exc:
        return _fail(step, FailureKind.PERMANENT, str(exc), exc)
    except AEPError as exc:  # pragma: no cover - every AEPError is classified above
        return _fail(step, FailureKind.BUG, str(exc), exc)
    except Exception as exc:
        if _is_infrastructure(exc):
            raise  # Redis or a time limit: the carrier stays; the watchdog publishes the step again
        return _fail(step, FailureKind.BUG, f"unexpected {type(exc).__name__}: {exc}", exc)
    if isinstance(outcome, Wait):
        return _wait(step, record, outcome, execution.now())
    return _done(rt, step, record, req, outcome)


def _is_infrastructure(exc: Exception) -> bool:
    import redis
    from billiard.exceptions import SoftTimeLimitExceeded

    return isinstance(exc, redis.RedisError | SoftTimeLimitExceeded)


def _done(
    rt: Runtime, step: Step, record: RunRecord, req: ActivationRequest, done: Done
) -> tuple[Change, dict[str, Any]]:
    nxt = rt.plan.after(req, step.name)
    change = Change(
        set={**done.set, "errors": 0}, delete=[*done.delete, *_WAIT_FIELDS], events=list(done.events),
        claims=list(done.claims), settle=done.settle,
    )  # fmt: skip
    if done.observed is not None and rt.durations is not None:
        sandbox = req.sandbox or rt.settings.aep_sandbox_name  # as the step saw it (StepContext.sandbox)
        change.observe = rt.durations.entry(done.observed[0], sandbox, done.observed[1])
    if nxt is None:
        change.finish_status = RunStatus.SUCCEEDED
        last = change.events.pop() if change.events and change.events[-1].event == "succeeded" else None
        change.events.append(Event(step.name, "succeeded", last.detail if last else "the run finished", pin=True))
    else:
        change.next = Next(nxt.name, publish=True)
    return change, {"run_id": record.run_id, **done.result}


_WAIT_FIELDS = ("wait_until", "waiting_reason", "wait_kind", "wait_since")


def _wait(step: Step, record: RunRecord, wait: Wait, now: float) -> tuple[Change, BaseException]:
    """The change a wait leaves with; its times are ``now``'s clock, the server's (``LeasedExecution.now``),
    which the steps compare them with (``polls.still_looking``), not this host's."""
    until = now + wait.delay_s
    fields: dict[str, Any] = {
        **wait.set,
        "wait_until": round(until, 3),
        "waiting_reason": wait.reason,
        "wait_kind": wait.kind.value,
        "errors": record.errors if wait.kind in (WaitKind.RETRY, WaitKind.RATE_LIMIT) else 0,
    }
    if record.wait_kind != wait.kind.value or not record.wait_since:
        fields["wait_since"] = round(until - wait.delay_s, 3)
    status = RunStatus.WAITING if wait.kind in WAITING_ON_US else RunStatus.RUNNING
    change = Change(
        set=fields, delete=list(wait.delete), events=list(wait.events), status=status,
        next=Next(step.name, delay_s=wait.delay_s, same_step=True),
    )  # fmt: skip
    return change, Retry(wait.reason, exc=Waiting(f"{wait.reason}; next check in {_duration(wait.delay_s)}"),
                         when=wait.delay_s)  # fmt: skip


def _fail(step: Step, kind: FailureKind, message: str, exc: BaseException) -> tuple[Change, BaseException]:
    failure = Failure(kind, message, step.name)
    change = Change(
        delete=list(_WAIT_FIELDS), events=[Event(step.name, "failed", message, pin=True)],
        finish_status=RunStatus.FAILED, failure=failure,
    )  # fmt: skip
    return change, exc


def _cancelled(step: Step, record: RunRecord) -> tuple[Change, BaseException]:
    """A cancel began (and may have stopped short of its end): this execution ends the run instead."""
    detail = f"cancelled by {record.cancel_requested or 'an operator'} (ended by the step in progress)"
    change = Change(
        delete=list(_WAIT_FIELDS), events=[Event(step.name, "cancelled", detail, pin=True)],
        finish_status=RunStatus.CANCELLED,
    )  # fmt: skip
    return change, Ignore()


def _backoff(rt: Runtime, errors: int) -> float:
    s = rt.settings
    return backoff(max(0, errors), s.retry_initial_s, 2.0, s.retry_cap_s, jitter=0.5)


def _duration(seconds: float) -> str:
    """``16 h 47 min``, ``12.5 s``: a wait as a person reads it."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    return f"{minutes // 60} h {minutes % 60} min"

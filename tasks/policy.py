"""Celery glue shared by every step: fencing, waiting without sleeping, and the retry policy.

The retry policy, declared once:
- ``Wait`` from a step (job still running, quota exhausted, audience busy) and ``RateLimited``
  (honouring ``Retry-After``) reschedule the same message through the Redis delay queue.
- Other ``TransientError``s reschedule with jittered exponential backoff, at most ``RETRY_MAX``
  times in a row per step (a budget separate from poll attempts, kept in the run ledger).
- ``PermanentError``, ``JobFailed`` and ``QuotaExhausted`` (``on_quota="fail"``) fail the run at once.

A reschedule stores the task's own signature (chain included) in Redis and raises Celery's ``Retry``,
so Flower shows RETRY with the reason, the message is acknowledged, and no worker slot or ETA
message is held while waiting (see ``aep/delays.py`` for why not ``countdown``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Task
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded
from kombu.utils.json import dumps

from aep_activator.aep.api.errors import (
    AEPError,
    JobFailed,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from aep_activator.aep.coordination.runs import RunRecord
from aep_activator.aep.pipeline import plan as c
from aep_activator.aep.pipeline.backoff import backoff
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.steps import Done, Outcome, StepContext, Wait
from aep_activator.tasks.runtime import Runtime, runtime

log = logging.getLogger(__name__)

StepFn = Callable[[StepContext, RunRecord, int], Outcome]


class StepTask(Task):  # type: ignore[misc]
    """Base class of the chain's steps: late acks, because every step is safe to run twice."""

    acks_late = True
    reject_on_worker_lost = True
    typing = False
    max_retries = None  # our budgets live in the run ledger, not in Celery's counter
    step_index = -1


def reschedule(task: Task, rt: Runtime, run_id: str, delay_s: float, reason: str) -> None:
    """Store this message again, due in ``delay_s``, and tell Celery it was retried."""
    retries = task.request.retries + 1
    sig = task.signature_from_request(retries=retries)
    # Member names are deterministic: a duplicate execution re-schedules the same member, not a second one.
    member = f"{run_id}:{task.name}:{retries}"
    rt.delays.schedule(member, dumps(dict(sig)), time.time() + delay_s)  # type: ignore[no-untyped-call]
    raise Retry(reason, when=delay_s)


def run_step(task: Task, run_id: str, step: StepFn) -> dict[str, Any]:
    """Execute one step of one run, and turn its outcome into Celery control flow."""
    if not isinstance(run_id, str) or not run_id:
        raise Ignore()
    try:
        return _fenced(task, run_id, step)
    except redis.RedisError:
        # Our own Redis blinked: put the message back rather than lose it. If Redis is down for good the
        # reject cannot be sent either, and the transport redelivers after visibility_timeout.
        log.warning("run %s: Redis error in %s; requeueing", run_id, task.name, exc_info=True)
        raise Reject(requeue=True) from None


def _fenced(task: Task, run_id: str, step: StepFn) -> dict[str, Any]:
    rt = runtime()
    attempt = task.request.retries or 0
    verdict = rt.ledger.enter(run_id, task.step_index, attempt)
    if verdict != "ok":
        log.info("run %s: dropping %s attempt %d (%s)", run_id, task.name, attempt, verdict)
        raise Ignore()
    # Two copies of one message (a redelivery racing the original, or a pump that republished after a
    # crash) pass the fence together. Only one may execute: the other comes back in a moment and is then
    # dropped by the fence, or runs if the holder died (the lock expires with the task time limit).
    token = rt.ledger.lock_run(run_id, rt.settings.task_time_limit_s)
    if token is None:
        reschedule(task, rt, run_id, 1.0, "another execution of this run is in progress")
    try:
        return _execute(task, rt, run_id, step, attempt)
    finally:
        rt.ledger.unlock_run(run_id, token or "")


def _execute(task: Task, rt: Runtime, run_id: str, step: StepFn, attempt: int) -> dict[str, Any]:
    run = rt.ledger.get(run_id, timeline=False)
    assert run is not None
    step_name = task.name.rsplit(".", 1)[-1]
    if run.step != step_name or run.status != "running":
        rt.ledger.event(
            run_id,
            step_name,
            "started",
            f"attempt {attempt}",
            step=step_name,
            status="running",
            wait_until=None,
            waiting_reason=None,
        )
    try:
        outcome = step(rt.step_context(), run, attempt)
    except QuotaExhausted as exc:
        fail_run(rt, run_id, step_name, exc)
        raise
    except RateLimited as exc:
        delay = exc.retry_after_s if exc.retry_after_s is not None else _error_delay(rt, run_id, step_name)
        _note_wait(rt, run_id, step_name, delay, f"AEP rate limit: {exc.message}", waiting=False)
        reschedule(task, rt, run_id, max(delay, 0.5), f"rate limited; retry in {delay:.1f}s")
    except TransientError as exc:
        errors = _count_error(rt, run_id, step_name)
        if errors > rt.settings.retry_max:
            fail_run(rt, run_id, step_name, exc, f"gave up after {errors - 1} retries: ")
            raise
        delay = _error_delay(rt, run_id, step_name)
        _note_wait(
            rt, run_id, step_name, delay, f"transient error {errors}/{rt.settings.retry_max}: {exc}", waiting=False
        )
        reschedule(task, rt, run_id, delay, f"transient error: {exc.message}; retry in {delay:.1f}s")
    except (PermanentError, JobFailed) as exc:
        fail_run(rt, run_id, step_name, exc)
        raise
    except AEPError as exc:  # pragma: no cover - every AEPError is classified above
        fail_run(rt, run_id, step_name, exc)
        raise
    except redis.RedisError:
        raise  # run_step requeues the message
    except SoftTimeLimitExceeded:
        delay = _error_delay(rt, run_id, step_name)
        reschedule(task, rt, run_id, delay, "step ran past its soft time limit; retrying")
    except Exception as exc:
        # A bug or an input we did not foresee: fail the run with the reason instead of leaving it
        # "running" forever, and never crash-loop on the same message.
        fail_run(rt, run_id, step_name, exc, f"unexpected {type(exc).__name__}: ")
        raise
    rt.ledger.update(run_id, **{f"errors__{step_name}": None})
    if isinstance(outcome, Wait):
        _note_wait(rt, run_id, step_name, outcome.delay_s, outcome.reason, waiting=outcome.waiting)
        reschedule(task, rt, run_id, outcome.delay_s, f"{outcome.reason}; next check in {outcome.delay_s:.1f}s")
    assert isinstance(outcome, Done)
    result = {"run_id": run_id, **outcome.result}
    if task.name == c.TASK_POLL_ACTIVATION:
        rt.ledger.finish_if_open(run_id, "succeeded", "all flow runs succeeded", step=step_name)
    return result


def _count_error(rt: Runtime, run_id: str, step_name: str) -> int:
    return int(rt.redis.hincrby(rt.ledger.key(run_id), f"errors:{step_name}", 1))


def _error_delay(rt: Runtime, run_id: str, step_name: str) -> float:
    n = int(rt.ledger.field(run_id, f"errors:{step_name}") or 1)
    s = rt.settings
    return backoff(max(0, n - 1), s.retry_initial_s, 2.0, s.retry_cap_s, jitter=0.5)


def _note_wait(rt: Runtime, run_id: str, step_name: str, delay_s: float, reason: str, *, waiting: bool) -> None:
    until = round(time.time() + delay_s, 3)
    if waiting:
        rt.ledger.event(run_id, step_name, "waiting", reason, status="waiting", wait_until=until, waiting_reason=reason)
    else:
        rt.ledger.update(run_id, status="running", wait_until=until, waiting_reason=reason)


def fail_run(rt: Runtime, run_id: str, step_name: str, exc: BaseException, prefix: str = "") -> None:
    """Mark the run failed (once), and let go of its audiences."""
    message = f"{prefix}{exc}"
    if rt.ledger.finish_if_open(run_id, "failed", message, step=step_name, error=message):
        log.error("run %s failed at %s: %s", run_id, step_name, message)
    run = rt.ledger.get(run_id, timeline=False)
    if run is not None:
        try:
            audiences = ActivationRequest.model_validate(run.request).audiences
        except ValueError:
            return
        rt.locks.release(audiences, run_id)

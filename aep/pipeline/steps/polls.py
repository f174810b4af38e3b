"""What the steps share about waiting on AEP: one poll for segment and export jobs, and the waits of
a create step whose POST's answer was lost."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import redis

from aep_activator.aep.api.errors import AEPError, DeadlineExceeded, JobFailed, OutcomeUnknown, Unaccounted
from aep_activator.aep.api.models import ExportJobStatus, FlowRun, JobError, SegmentJobStatus, TimeSpan
from aep_activator.aep.coordination.runs import Event
from aep_activator.aep.pipeline.adaptive import adaptive_delay
from aep_activator.aep.pipeline.backoff import PollSchedule
from aep_activator.aep.pipeline.steps.base import Done, Outcome, StepContext, Wait, WaitKind
from aep_activator.aep.pipeline.steps.looks import Look

log = logging.getLogger(__name__)


class _JobMetrics(Protocol):
    @property
    def totalTime(self) -> TimeSpan | None: ...


class _PolledJob(Protocol):
    @property
    def status(self) -> SegmentJobStatus | ExportJobStatus: ...
    @property
    def errors(self) -> list[JobError]: ...
    @property
    def creationTime(self) -> int | None: ...
    @property
    def updateTime(self) -> int | None: ...
    @property
    def metrics(self) -> _JobMetrics | None: ...


def poll_job(
    ctx: StepContext,
    *,
    kind: str,
    job_id: str | None,
    get: Callable[[str], _PolledJob],
    cancel: Callable[[str], Any],
    terminal: frozenset[Any],
    schedule: PollSchedule,
) -> Outcome:
    """Check one segment or export job once: done, failed, past its deadline (cancel it), or wait."""
    if not job_id:
        raise JobFailed(f"no {kind} job recorded for this run", kind=kind)
    job = get(job_id)
    status = job.status.value
    started = job_started(ctx, job.creationTime)
    if status == "SUCCEEDED":
        event = Event(ctx.step, "succeeded", f"{kind} job {job_id}")
        span = job.metrics.totalTime if job.metrics else None
        ended = job_ended(ctx, started, span.endTimeInMs if span else None, job.updateTime)
        return Done({f"{kind}_job_id": job_id, "status": status}, set={"aep_status": status}, events=(event,),
                    observed=observation(ctx, kind, ended - started))  # fmt: skip
    if job.status in terminal:
        why = "; ".join(e.msg or e.code or "" for e in job.errors) or "no error given"
        raise JobFailed(f"{kind} job {job_id} ended {status}: {why}", kind=kind, job_id=job_id, aep_status=status)
    if ctx.now() > started + schedule.deadline_s:
        cancel_quietly(lambda: cancel(job_id))
        raise DeadlineExceeded(
            f"{kind} job {job_id} still {status} after {schedule.deadline_s:.0f}s: cancelled",
            kind=kind, job_id=job_id, aep_status=status,
        )  # fmt: skip
    delay = poll_delay(ctx, kind, schedule, ctx.now() - started)
    return Wait(delay, f"{kind} job {job_id} is {status}", WaitKind.AEP, set={"aep_status": status})


CLOCK_SKEW_S = 300.0
"""How far AEP's clock may be from ours before a date it gives (a job's creation or end) is not believed."""

_MS_CEILING = 10**15
"""Epoch milliseconds past the year 33,000: not a date (and ``ms / 1000`` of a huge int overflows)."""


def epoch_s(ms: object) -> float | None:
    """AEP's epoch milliseconds as seconds, or None (absent, not an integer, or not a date)."""
    if isinstance(ms, int) and not isinstance(ms, bool) and 0 < ms < _MS_CEILING:
        return ms / 1000
    return None


def job_started(ctx: StepContext, creation_ms: int | None) -> float:
    """When the job began (epoch s): AEP's ``creationTime`` (ms) when it is plausible, else the run's start.

    The run created the job, so it cannot be older than the run or newer than now (give or take
    :data:`CLOCK_SKEW_S`). A date outside that (in seconds instead of ms, or in the future) would make
    the deadline never come, or fail a healthy job at once, and skew the polls' duration summary.
    """
    aep = epoch_s(creation_ms)
    if aep is not None and ctx.run.created_at - CLOCK_SKEW_S <= aep <= ctx.now() + CLOCK_SKEW_S:
        return aep
    return ctx.run.created_at


def seen_running(ctx: StepContext) -> float | None:
    """When this step's polls began to wait on a job they saw still running (epoch s, our clock), if they did."""
    run = ctx.run
    return run.wait_since if run.wait_kind == WaitKind.AEP.value and run.wait_since else None


def job_ended(ctx: StepContext, started: float, *ends_ms: int | None) -> float:
    """When a finished job ended (epoch s): the first of AEP's ``ends_ms`` that is plausible, else now.

    The polls' duration summary wants how long AEP took, not how long until a poll saw it done: that
    adds the detection delay to every duration, and an outage of the workers to every job that ended
    during it. AEP dates a job's end (``metrics.totalTime.endTimeInMs``, then ``updateTime``, in ms), but
    its own documented examples include an end decades before the job's creation: an end is believed
    only after the job's start (an end at the very millisecond of its start says nothing) and before now
    (give or take :data:`CLOCK_SKEW_S`). A believed end is then kept between the time a poll saw the job
    still running (:func:`seen_running`) and now: a job seen done cannot have ended later, and one seen
    running cannot have ended before (a duration of a few ms, believed, would bring every later job's
    polls forward to its first seconds).
    """
    now = ctx.now()
    for ms in ends_ms:
        end = epoch_s(ms)
        if end is not None and started < end <= now + CLOCK_SKEW_S:
            return min(max(end, seen_running(ctx) or end), now)
    return now


def flow_run_took(run: FlowRun) -> float | None:
    """How long a finished flow run took by AEP's own clock, in s, or None when AEP does not say.

    Its end is ``metrics.durationSummary.completedAtUTC``, else ``updatedAt`` (a finished run's last
    change is its end), less ``createdAt``; an end at or before the start says nothing.
    """
    summary = run.metrics.durationSummary
    created = epoch_s(run.createdAt)
    if created is None:
        return None
    for ms in (summary.completedAtUTC if summary else None, run.updatedAt):
        completed = epoch_s(ms)
        if completed is not None and completed > created:
            return round(completed - created, 3)
    return None


def activation_took(
    ctx: StepContext, orders: list[dict[str, Any]], started: float, deadline_s: float, *, timed: bool = True
) -> float | None:
    """An activation's duration for the summary: its slowest flow run by AEP's clock (``flow_run_took``)
    when AEP dated every one (within the activation's deadline), else from the activation until now;
    never shorter than until a poll saw a flow run still running (:func:`seen_running`).

    ``timed=False`` says no poll of ours watched the flow runs end (all were over when a look after a
    lost answer adopted them, ``adhoc._look``): "until now" is then the instant of adoption, a duration
    of about nothing that would bring every later activation's polls forward to its first seconds, so
    without AEP's dates for all of them there is no duration (None).

    AEP's durations are not bounded by ours since the activation: a flow run adopted after a lost answer
    ran before we knew of it. One dated too long only lengthens one sample, which brings polls forward,
    never back.
    """
    took = [float(t) for o in orders
            if isinstance(t := o.get("took"), int | float) and not isinstance(t, bool) and 0 < t <= deadline_s]
    if orders and len(took) == len(orders):
        slowest = max(took)
    elif timed:
        slowest = ctx.now() - started
    else:
        return None
    running = seen_running(ctx)
    return max(slowest, running - started) if running is not None else slowest


def poll_delay(ctx: StepContext, kind: str, schedule: PollSchedule, age_s: float) -> float:
    """The delay before the next look at a ``kind`` job ``age_s`` old: adaptive (``aep/pipeline/adaptive.py``)
    once enough durations of its kind and sandbox are known, else the geometric schedule; never past the
    job's deadline, where the next look cancels it."""
    if ctx.durations is not None:
        try:
            seen = ctx.durations.recent(kind, ctx.sandbox)
        except redis.RedisError as exc:  # the summary is an optimisation: without it, poll as before
            log.warning("duration summary unreadable (%s); polling on the geometric schedule", exc)
            seen = []
        delay = adaptive_delay(age_s, seen, schedule, jitter=ctx.config.poll_jitter, min_samples=ctx.min_samples)
        if delay is not None:
            return delay
    return min(schedule.delay(ctx.attempt, jitter=ctx.config.poll_jitter), max(0.0, schedule.deadline_s - age_s))


def observation(ctx: StepContext, kind: str, duration_s: float | None) -> tuple[str, float] | None:
    """A finished job's duration for the summary its kind's polls adapt to, or None (no summary, or no
    duration): the step's ``Done`` carries it and the runner adds it as the step leaves."""
    if ctx.durations is None or duration_s is None or duration_s <= 0:
        return None
    return kind, duration_s


def cancel_quietly(cancel: Callable[[], Any]) -> None:
    try:
        cancel()
    except AEPError as exc:
        log.warning("cancelling an AEP job failed: %s", exc)


def lost_answer(ctx: StepContext, exc: OutcomeUnknown) -> Wait:
    """The POST was sent and its answer lost: keep the intent (and the spent quota); look next time."""
    log.warning("run %s: outcome of %s unknown (%s); the next check looks before creating", ctx.run.run_id,
                ctx.step, exc)  # fmt: skip
    delay = min(30.0, max(0.2, ctx.config.look_settle_s / 4))
    reason = f"the answer to our POST was lost ({exc.message}); looking for what AEP created"
    # The look wait begins now, after this POST (an earlier one's look may have been the wait before):
    # LOOK_SETTLE_S counts from here (still_looking), on the server's clock as the runner dates waits.
    return Wait(delay, reason, WaitKind.LOOK, set={"wait_since": round(ctx.now(), 3)},
                events=(Event(ctx.step, "outcome-unknown", str(exc), pin=True),))


def still_looking(ctx: StepContext, look: Look, intent_s: float, what: str) -> Wait | None:
    """None when ``look`` proves the POST was not accepted; else how long to keep looking.

    The listing proves it once read ``LOOK_SETTLE_S`` after the answer was lost (the look wait began), or
    after the intent when no look wait began (the execution died after sending): a POST's own time in
    flight, between its intent and its lost answer, does not count towards it.
    """
    age = ctx.now() - intent_s
    looking_since = ctx.run.wait_since if ctx.run.wait_kind == WaitKind.LOOK.value and ctx.run.wait_since else None
    settled = ctx.now() - max(intent_s, looking_since or 0.0)
    if look.complete and settled >= ctx.config.look_settle_s:
        return None
    if looking_since is not None and ctx.now() - looking_since > ctx.config.wait_deadline_s:
        raise Unaccounted(
            f"{what} of a POST sent {age:.0f}s ago is neither in AEP's lists nor proven absent "
            f"({'the listing was cut short' if not look.complete else 'still settling'}); check AEP, then resume"
        )
    delay = max(0.2, ctx.config.look_settle_s - settled) if look.complete else ctx.config.look_settle_s
    why = "AEP's list does not reach back to our POST yet" if not look.complete else "not in AEP's list yet"
    return Wait(delay, f"looking for {what} of a POST whose answer was lost: {why}", WaitKind.LOOK)

"""The tutorial's steps as domain functions: safe to run twice, no Celery, no sleeping.

Each step takes a :class:`StepContext` and the run's record, makes at most one AEP call that changes
anything, and returns :class:`Done` (go to the next step) or :class:`Wait` (check again later), or
raises an ``AEPError`` that says what to do next. Celery glue lives in ``tasks/``.

Exactly-once POSTs (STYLE.md §6): read the ledger; if an id is recorded, the step is done. If only an
*intent* is recorded (a crash between sending and recording), **look before creating**: list AEP's jobs
for one that matches and was created after the intent, and adopt it. Quotas are reserved before the
POST, committed when AEP accepted it or the outcome is unknown, and refunded when AEP demonstrably did
not accept it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import AEPError, Conflict, JobFailed, NotFound, QuotaExhausted, refunds_quota
from aep_activator.aep.api.models import (
    EXPORT_JOB_TERMINAL,
    FLOW_RUN_TERMINAL,
    SEGMENT_JOB_TERMINAL,
    ExportJob,
    ExportJobStatus,
    FlowRunStatus,
    JobError,
    SegmentJob,
    SegmentJobStatus,
)
from aep_activator.aep.coordination.locks import AudienceLocks
from aep_activator.aep.coordination.quota import RedisQuotaLedger
from aep_activator.aep.coordination.runs import RunLedger, RunRecord
from aep_activator.aep.pipeline import plan as c
from aep_activator.aep.pipeline.backoff import PollSchedule
from aep_activator.aep.pipeline.request import ActivationRequest

log = logging.getLogger(__name__)

CLOCK_SKEW_S = 30.0
"""How far AEP's clock may be behind ours when matching a job to an intent we recorded."""


@dataclass(frozen=True)
class StepConfig:
    org_id: str
    sandbox: str | None
    segment_poll: PollSchedule
    export_poll: PollSchedule
    activation_poll: PollSchedule
    poll_jitter: float
    quota_adhoc: int
    quota_segment_jobs: int
    reservation_ttl_s: float
    audience_lock_ttl_s: float


@dataclass
class StepContext:
    client: AEPClient
    ledger: RunLedger
    quotas: RedisQuotaLedger
    locks: AudienceLocks
    config: StepConfig
    clock: Callable[[], float]


@dataclass(frozen=True)
class Done:
    result: dict[str, Any]


@dataclass(frozen=True)
class Wait:
    delay_s: float
    reason: str
    waiting: bool = False  # True: the run waits on us (quota, lock, AEP conflict), not on an AEP job
    meta: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Wait


def _request(run: RunRecord) -> ActivationRequest:
    return ActivationRequest.model_validate(run.request)


# --------------------------------------------------------------------------------------------------
# Quotas


def _holder(run: RunRecord) -> str:
    """The quota holder: the run, and a new holder per resume (a resumed run POSTs, and spends, again)."""
    return run.run_id if not run.generation else f"{run.run_id}#{run.generation}"


def _reserve(ctx: StepContext, run: RunRecord, quota: str, scope: str, limit: int, on_quota: str) -> Wait | None:
    res = ctx.quotas.reserve(quota, scope, limit, _holder(run), ctx.config.reservation_ttl_s)
    if res.ok:
        ctx.ledger.update(run.run_id, **{f"quota__{quota}": res.window_start})
        return None
    reset_at = res.usage.reset_at
    msg = f"{quota} quota for {scope} exhausted ({res.usage.used} used, {res.usage.reserved} reserved of {limit})"
    if on_quota == "fail":
        raise QuotaExhausted(msg, quota=quota, reset_at=reset_at)
    return Wait(max(1.0, reset_at - ctx.clock()) + 1.0, f"{msg}; waiting until the window resets", waiting=True)


def _settle(ctx: StepContext, run: RunRecord, quota: str, scope: str, *, accepted: bool) -> None:
    window = ctx.ledger.field(run.run_id, f"quota:{quota}")
    if window is None:
        return
    if accepted:
        ctx.quotas.commit(quota, scope, _holder(run), int(window))
    else:
        ctx.quotas.refund(quota, scope, _holder(run), int(window))


def _post_guarded(
    ctx: StepContext,
    run: RunRecord,
    quota: str | None,
    scope: str,
    send: Callable[[], Any],
    *,
    fresh_intent: str | None = None,
) -> Any:
    """Send one POST whose intent is recorded; settle the quota by what we know of the outcome.

    ``fresh_intent`` names the intent field when this attempt recorded it: if AEP demonstrably did not
    accept the POST, that intent is forgotten, so the next attempt need not look before creating.
    An intent left by an earlier attempt whose outcome is unknown is always kept.
    """
    try:
        answer = send()
    except AEPError as exc:
        if refunds_quota(exc):
            if quota:
                _settle(ctx, run, quota, scope, accepted=False)
            if fresh_intent and not isinstance(exc, Conflict):
                ctx.ledger.update(run.run_id, **{fresh_intent.replace(":", "__"): None})
        else:
            # Timeout or 5xx after sending: AEP may have accepted. Spend the quota (never overshoot) and
            # keep the intent, so the retry looks for the job before creating another.
            log.warning("run %s: outcome of POST unknown (%s); the retry will look before creating", run.run_id, exc)
            if quota:
                _settle(ctx, run, quota, scope, accepted=True)
        raise
    if quota:
        _settle(ctx, run, quota, scope, accepted=True)
    return answer


# --------------------------------------------------------------------------------------------------
# Step 1: segment job


def _matching_segment_job(ctx: StepContext, run_id: str, segment_ids: list[str], since_s: float) -> SegmentJob | None:
    wanted = set(segment_ids)
    page = ctx.client.segment_jobs.list(limit=50, segment_id=segment_ids[0])
    for job in page.children:
        created_s = (job.creationTime or 0) / 1000
        matches = set(job.segment_ids) == wanted and job.source in (None, "api") and created_s >= since_s
        # Claim only on a match: the claim is what keeps a sibling run from adopting it too.
        if matches and ctx.ledger.claim("segment_job", job.id, run_id):
            return job
    return None


def create_segment_job(ctx: StepContext, run: RunRecord) -> Outcome:
    if run.segment_job_id:
        return Done({"segment_job_id": run.segment_job_id})
    req = _request(run)
    ids = req.evaluation_segment_ids
    scope = ctx.config.sandbox or "default"
    intent = ctx.ledger.field(run.run_id, "intent:segment_job")
    if intent is not None:
        found = _matching_segment_job(ctx, run.run_id, ids, float(intent) - CLOCK_SKEW_S)
        if found is not None:
            log.warning("run %s: adopted segment job %s created before a crash", run.run_id, found.id)
            _settle(ctx, run, c.QUOTA_SEGMENT_JOBS, scope, accepted=True)
            ctx.ledger.event(run.run_id, c.TASK_CREATE_SEGMENT_JOB, "adopted", found.id, segment_job_id=found.id)
            return Done({"segment_job_id": found.id})
    if wait := _reserve(ctx, run, c.QUOTA_SEGMENT_JOBS, scope, ctx.config.quota_segment_jobs, req.on_quota):
        return wait
    if intent is None:
        ctx.ledger.update(run.run_id, intent__segment_job=ctx.clock())
    job = _post_guarded(
        ctx, run, c.QUOTA_SEGMENT_JOBS, scope, lambda: ctx.client.segment_jobs.create(ids),
        fresh_intent="intent:segment_job" if intent is None else None,
    )  # fmt: skip
    _claim_created(ctx, run, "segment_job", job.id)
    ctx.ledger.event(
        run.run_id,
        c.TASK_CREATE_SEGMENT_JOB,
        "created",
        f"segment job {job.id}",
        segment_job_id=job.id,
        aep_status=job.status.value,
    )
    return Done({"segment_job_id": job.id})


# --------------------------------------------------------------------------------------------------
# Step 3: export job


def _claim_created(ctx: StepContext, run: RunRecord, kind: str, aep_id: str) -> None:
    if not ctx.ledger.claim(kind, aep_id, run.run_id):
        # Another run adopted our job in the instant between AEP's answer and this claim. Both runs
        # now share one AEP job; say so loudly rather than pretend.
        log.error("run %s: %s %s was adopted by another run; both share it", run.run_id, kind, aep_id)


def _matching_export_job(ctx: StepContext, run_id: str, req: ActivationRequest, since_s: float) -> ExportJob | None:
    spec = req.export_job
    assert spec is not None
    wanted_segments = set(spec.segment_ids)
    for job in ctx.client.export_jobs.iter(page_size=50, max_pages=2):
        created_s = (job.creationTime or 0) / 1000
        if created_s < since_s:
            break  # newest first: everything after this is older
        same_dataset = job.destination is not None and job.destination.datasetId == spec.destination.datasetId
        same_schema = job.schema_ is not None and job.schema_.name == spec.schema_.name
        matches = same_dataset and same_schema and set(job.segment_ids) == wanted_segments
        if matches and ctx.ledger.claim("export_job", job.id, run_id):
            return job
    return None


def create_export_job(ctx: StepContext, run: RunRecord) -> Outcome:
    if run.export_job_id:
        return Done({"export_job_id": run.export_job_id})
    req = _request(run)
    if req.export_job is None:
        raise JobFailed("this run has no export job spec", kind="export")
    intent = ctx.ledger.field(run.run_id, "intent:export_job")
    if intent is not None:
        found = _matching_export_job(ctx, run.run_id, req, float(intent) - CLOCK_SKEW_S)
        if found is not None:
            log.warning("run %s: adopted export job %s created before a crash", run.run_id, found.id)
            ctx.ledger.event(run.run_id, c.TASK_CREATE_EXPORT_JOB, "adopted", found.id, export_job_id=found.id)
            return Done({"export_job_id": found.id})
    if intent is None:
        ctx.ledger.update(run.run_id, intent__export_job=ctx.clock())
    spec = req.export_job
    job = _post_guarded(
        ctx, run, None, "", lambda: ctx.client.export_jobs.create(spec),
        fresh_intent="intent:export_job" if intent is None else None,
    )  # fmt: skip
    _claim_created(ctx, run, "export_job", job.id)
    ctx.ledger.event(
        run.run_id,
        c.TASK_CREATE_EXPORT_JOB,
        "created",
        f"export job {job.id}",
        export_job_id=job.id,
        aep_status=job.status.value,
    )
    return Done({"export_job_id": job.id})


# --------------------------------------------------------------------------------------------------
# Steps 2 and 4: polls


def _deadline_passed(ctx: StepContext, run: RunRecord, created_ms: int | None, schedule: PollSchedule) -> bool:
    started = (created_ms / 1000) if created_ms else run.created_at
    return ctx.clock() > started + schedule.deadline_s


class _PolledJob(Protocol):
    @property
    def status(self) -> SegmentJobStatus | ExportJobStatus: ...
    @property
    def errors(self) -> list[JobError]: ...
    @property
    def creationTime(self) -> int | None: ...


def _poll_job(
    ctx: StepContext,
    run: RunRecord,
    attempt: int,
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
    ctx.ledger.update(run.run_id, aep_status=status)
    if status == "SUCCEEDED":
        ctx.ledger.event(run.run_id, f"poll_{kind}_job", "succeeded", f"{kind} job {job_id}")
        return Done({f"{kind}_job_id": job_id, "status": status})
    if job.status in terminal:
        why = "; ".join(e.msg or e.code or "" for e in job.errors) or "no error given"
        raise JobFailed(f"{kind} job {job_id} ended {status}: {why}", kind=kind, job_id=job_id, aep_status=status)
    if _deadline_passed(ctx, run, job.creationTime, schedule):
        _cancel_quietly(lambda: cancel(job_id))
        raise JobFailed(
            f"{kind} job {job_id} still {status} after {schedule.deadline_s:.0f}s: cancelled",
            kind=kind,
            job_id=job_id,
            aep_status=status,
        )
    delay = schedule.delay(attempt, jitter=ctx.config.poll_jitter)
    return Wait(delay, f"{kind} job {job_id} is {status}", meta={"aep_job": job_id, "aep_status": status})


def poll_segment_job(ctx: StepContext, run: RunRecord, attempt: int) -> Outcome:
    jobs = ctx.client.segment_jobs
    return _poll_job(
        ctx, run, attempt, kind="segment", job_id=run.segment_job_id, get=jobs.get, cancel=jobs.cancel,
        terminal=SEGMENT_JOB_TERMINAL, schedule=ctx.config.segment_poll,
    )  # fmt: skip


def poll_export_job(ctx: StepContext, run: RunRecord, attempt: int) -> Outcome:
    jobs = ctx.client.export_jobs
    return _poll_job(
        ctx, run, attempt, kind="export", job_id=run.export_job_id, get=jobs.get, cancel=jobs.cancel,
        terminal=EXPORT_JOB_TERMINAL, schedule=ctx.config.export_poll,
    )  # fmt: skip


def _cancel_quietly(cancel: Callable[[], Any]) -> None:
    try:
        cancel()
    except AEPError as exc:
        log.warning("cancelling an AEP job failed: %s", exc)


# --------------------------------------------------------------------------------------------------
# Step 5: ad-hoc activation, and its poll


def _orders_since(ctx: StepContext, run_id: str, req: ActivationRequest, since_s: float) -> list[dict[str, Any]]:
    """Flow runs of our dataflows that touch our audiences, started after ``since_s``, owned by no other run."""
    found = []
    for flow_id, audiences in req.activation_info.items():
        for flow_run in ctx.client.flow_runs.list(flow_id=flow_id, limit=50).items:
            if (flow_run.createdAt or 0) / 1000 < since_s:
                continue
            entities = _run_entities(flow_run.metrics.recordSummary)
            ours = [a for a in audiences if f"segment:{a}" in entities]
            # Claim only a run that touches our audiences: claiming first would take a sibling run's
            # flow run away from its owner, which would then activate a second time.
            if not ours or not ctx.ledger.claim("flow_run", flow_run.id, run_id):
                continue
            status = flow_run.status.value
            found += [{"segment": a, "order": flow_id, "run_id": flow_run.id, "status": status} for a in ours]
    return found


def _run_entities(record_summary: dict[str, Any] | None) -> set[str]:
    out: set[str] = set()
    for summary in (record_summary or {}).get("sourceSummaries") or []:
        for entity in (summary or {}).get("entitySummaries") or []:
            if isinstance(entity, dict) and isinstance(entity.get("id"), str):
                out.add(entity["id"])
    return out


def run_activation(ctx: StepContext, run: RunRecord) -> Outcome:
    if run.flow_runs:
        return Done({"flow_runs": [o["run_id"] for o in run.flow_runs]})
    req = _request(run)
    lock = ctx.locks.acquire(req.audiences, run.run_id, ctx.config.audience_lock_ttl_s)
    if not lock.ok:
        holders = ", ".join(f"{a} (run {o})" for a, o in sorted(lock.conflicts.items()))
        delay = ctx.config.activation_poll.initial_s
        return Wait(delay, f"audiences busy in another run: {holders}", waiting=True)
    org = ctx.config.org_id
    intent = ctx.ledger.field(run.run_id, "intent:activation")
    if intent is not None:
        orders = _orders_since(ctx, run.run_id, req, float(intent) - CLOCK_SKEW_S)
        if orders:
            log.warning("run %s: adopted %d flow runs started before a crash", run.run_id, len(orders))
            _settle(ctx, run, c.QUOTA_ADHOC, org, accepted=True)
            ctx.ledger.event(run.run_id, c.TASK_RUN_ACTIVATION, "adopted", f"{len(orders)} flow runs", flow_runs=orders)
            return Done({"flow_runs": [o["run_id"] for o in orders]})
    try:
        wait = _reserve(ctx, run, c.QUOTA_ADHOC, org, ctx.config.quota_adhoc, req.on_quota)
    except QuotaExhausted:
        ctx.locks.release(req.audiences, run.run_id)
        raise
    if wait is not None:
        # Do not sit on the audiences until the quota window resets: other runs may need them
        # and would otherwise wait behind us for hours (they would then wait for the quota too).
        ctx.locks.release(req.audiences, run.run_id)
        return wait
    export_ids = [run.export_job_id] if req.version == 1 and run.export_job_id else None
    if req.version == 1 and not export_ids:
        raise JobFailed("ad-hoc v1 needs an export id, and this run has none", kind="activation")
    if intent is None:
        # Keep the first intent: the search window must reach back to the first POST whose answer was lost.
        ctx.ledger.update(run.run_id, intent__activation=ctx.clock())
    try:
        answer = _post_guarded(
            ctx,
            run,
            c.QUOTA_ADHOC,
            org,
            lambda: ctx.client.activations.run(req.activation_info, export_ids=export_ids, version=req.version),
            fresh_intent="intent:activation" if intent is None else None,
        )
    except AEPError as exc:
        if not isinstance(exc, Conflict):
            if refunds_quota(exc):
                # AEP did not take the activation (a 429 may ask us to wait hours): let other runs have
                # the audiences meanwhile; the retry takes them again.
                ctx.locks.release(req.audiences, run.run_id)
            raise
        # "Run already going on for audience …": defer, do not fail. When an earlier POST of ours lost its
        # answer, the run going on may be ours, still processing (its flow run names no audiences until it
        # ends, so it cannot be matched yet): keep the intent, and the next look finds and adopts it.
        if intent is None:
            ctx.ledger.update(run.run_id, intent__activation=None)
        delay = ctx.config.activation_poll.initial_s
        return Wait(
            delay, f"AEP: run already going on for audience {exc.segment_id} (run {exc.flow_run_id})", waiting=True
        )
    orders = [
        {"segment": o.segment, "order": o.order, "run_id": o.run_id, "status": "processing"} for o in answer.order
    ]
    for o in orders:
        _claim_created(ctx, run, "flow_run", o["run_id"])
    ctx.ledger.event(run.run_id, c.TASK_RUN_ACTIVATION, "activated", f"{len(orders)} flow runs", flow_runs=orders)
    return Done({"flow_runs": [o["run_id"] for o in orders]})


def poll_activation(ctx: StepContext, run: RunRecord, attempt: int) -> Outcome:
    req = _request(run)
    orders = [dict(o) for o in run.flow_runs]
    if not orders:
        raise JobFailed("no flow runs recorded for this run", kind="activation")
    for order in orders:
        if order.get("status") in {s.value for s in FLOW_RUN_TERMINAL}:
            continue
        try:
            order["status"] = ctx.client.flow_runs.get(order["run_id"]).status.value
        except NotFound:
            order["status"] = "processing"  # not visible yet: AEP's run list is eventually consistent
    statuses = sorted({o["status"] for o in orders})
    ctx.ledger.update(run.run_id, flow_runs=orders, aep_status=",".join(statuses))
    if all(o["status"] in {s.value for s in FLOW_RUN_TERMINAL} for o in orders):
        ctx.locks.release(req.audiences, run.run_id)
        failed = [o for o in orders if o["status"] != FlowRunStatus.SUCCESS.value]
        if failed:
            names = ", ".join(f"{o['segment']}→{o['order']} ({o['status']})" for o in failed)
            raise JobFailed(
                f"{len(failed)} of {len(orders)} flow runs did not succeed: {names}",
                kind="activation",
                aep_status="failed",
            )
        return Done({"flow_runs": [o["run_id"] for o in orders], "status": "success"})
    schedule = ctx.config.activation_poll
    started = float(ctx.ledger.field(run.run_id, "intent:activation") or run.created_at)
    if ctx.clock() > started + schedule.deadline_s:
        ctx.locks.release(req.audiences, run.run_id)
        raise JobFailed(f"flow runs still {','.join(statuses)} after {schedule.deadline_s:.0f}s", kind="activation")
    ctx.locks.refresh(req.audiences, run.run_id, ctx.config.audience_lock_ttl_s)
    pending = sum(o["status"] not in {s.value for s in FLOW_RUN_TERMINAL} for o in orders)
    delay = schedule.delay(attempt, jitter=ctx.config.poll_jitter)
    return Wait(delay, f"{pending} of {len(orders)} flow runs still running", meta={"aep_status": statuses})

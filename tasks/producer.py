"""The producer API: start, cancel and resume activation runs.

    from aep_activator.tasks import start_activation
    run_id = start_activation(ActivationRequest(...))      # or a dict / JSON string of one

Nothing is enqueued unless the request validates. The same ``idempotency_key`` returns the same run
id and starts nothing new.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from celery import chain, signature
from pydantic import ValidationError

from aep_activator.aep.api.errors import AEPError, QuotaExhausted
from aep_activator.aep.coordination.runs import TERMINAL, RunRecord
from aep_activator.aep.pipeline import plan as c
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.tasks.celery import app
from aep_activator.tasks.runtime import runtime

log = logging.getLogger(__name__)


class InvalidRequest(ValueError):
    """The activation request does not validate. ``str()`` names each bad field."""


def parse_request(request: ActivationRequest | dict[str, Any] | str | bytes) -> ActivationRequest:
    if isinstance(request, ActivationRequest):
        return request
    try:
        if isinstance(request, str | bytes):
            return ActivationRequest.model_validate_json(request)
        return ActivationRequest.model_validate(request)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "request"
        lines.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid activation request:\n  " + "\n  ".join(lines)


def build_chain(run_id: str, steps: list[str]) -> Any:
    """The run's Celery chain: immutable signatures by task name, each taking only the run id."""
    return chain(*(signature(name, args=(run_id,), immutable=True, app=app) for name in steps))


def _frozen_chain(run_id: str, steps: list[str]) -> tuple[Any, list[str]]:
    canvas = build_chain(run_id, steps)
    canvas.freeze()
    return canvas, [t.id for t in canvas.tasks]


def _launch(run_id: str, steps: list[str]) -> list[str]:
    canvas, ids = _frozen_chain(run_id, steps)
    runtime().ledger.update(run_id, chain=ids)
    canvas.apply_async()
    return ids


def start_activation(request: ActivationRequest | dict[str, Any] | str | bytes) -> str:
    """Validate, record and enqueue one run. Returns its run id.

    With ``on_quota="fail"`` an exhausted quota raises :class:`QuotaExhausted` here, before anything is
    enqueued. The quota is only *checked* here; it is reserved by the step that spends it.
    """
    req = parse_request(request)
    rt = runtime()
    if req.on_quota == "fail":
        _check_quotas(req)
    run_id = uuid.uuid4().hex
    canvas, ids = _frozen_chain(run_id, req.steps())
    found, created = rt.ledger.create(
        req.wire(),
        started_by=req.started_by,
        idempotency_key=req.idempotency_key,
        run_id=run_id,
        extra={"chain": ids, "launched": 1},
    )
    if created:
        canvas.apply_async()
    elif rt.redis.hsetnx(rt.ledger.key(found), "launched", 1):
        # The producer that owns this key died between recording the run and recording it launched.
        _launch(found, req.steps())
    return found


def _check_quotas(req: ActivationRequest) -> None:
    rt = runtime()
    s = rt.settings
    checks = [(c.QUOTA_ADHOC, s.aep_org_id or "", s.quota_adhoc_per_day)]
    if req.segment_job:
        checks.append((c.QUOTA_SEGMENT_JOBS, s.aep_sandbox_name or "default", s.quota_segment_jobs_per_day))
    for name, scope, limit in checks:
        usage = rt.quotas.usage(name, scope, limit)
        if usage.remaining <= 0:
            raise QuotaExhausted(
                f"{name} quota for {scope} is used up ({usage.used}/{limit}); resets at {usage.reset_at:.0f}",
                quota=name,
                reset_at=usage.reset_at,
            )


def get_run(run_id: str) -> RunRecord | None:
    return runtime().ledger.get(run_id)


def cancel_run(run_id: str) -> RunRecord:
    """Stop a run: mark it cancelled, revoke its queued steps, DELETE its in-flight AEP jobs."""
    rt = runtime()
    run = rt.ledger.get(run_id)
    if run is None:
        raise KeyError(run_id)
    if run.terminal:
        return run
    rt.ledger.finish_if_open(run_id, "cancelled", "cancelled by an operator", step=run.step)
    if run.chain:
        app.control.revoke(run.chain)
    aep_status = (run.aep_status or "").upper()
    in_flight = aep_status not in {"SUCCEEDED", "FAILED", "CANCELLED"}
    try:
        if run.step == "poll_segment_job" and run.segment_job_id and in_flight:
            rt.client.segment_jobs.cancel(run.segment_job_id)
        elif run.step == "poll_export_job" and run.export_job_id and in_flight:
            rt.client.export_jobs.cancel(run.export_job_id)
    except AEPError as exc:
        log.warning("run %s: cancelling the AEP job failed: %s", run_id, exc)
        rt.ledger.event(run_id, run.step, "cancel-failed", str(exc))
    rt.locks.release(ActivationRequest.model_validate(run.request).audiences, run_id)
    cancelled = rt.ledger.get(run_id)
    assert cancelled is not None
    return cancelled


# A failed poll whose AEP job itself failed restarts at the create step: re-polling a FAILED job
# would only fail again. These are the ledger fields that step's retry must forget.
_RECREATE = {
    "poll_segment_job": ("create_segment_job", ["segment_job_id", "intent:segment_job", "quota:segment_jobs"]),
    "poll_export_job": ("create_export_job", ["export_job_id", "intent:export_job"]),
    "poll_activation": ("run_activation", ["flow_runs", "intent:activation", "quota:adhoc"]),
}


def resume_run(run_id: str) -> RunRecord:
    """Restart a failed (or stuck queued) run from the step it stopped at, reusing the AEP ids it has.

    When the failed step was a poll and its AEP job ended FAILED or CANCELLED (or the poll gave up
    at the deadline and cancelled it), the run restarts at that job's create step instead, which
    POSTs a new job and spends quota again under a new holder (``generation``).
    """
    rt = runtime()
    run = rt.ledger.get(run_id)
    if run is None:
        raise KeyError(run_id)
    if run.status not in {"failed", "queued"}:
        raise ValueError(f"run {run_id} is {run.status}; only failed or stuck queued runs can be resumed")
    req = ActivationRequest.model_validate(run.request)
    steps = req.steps()
    names = [s.rsplit(".", 1)[-1] for s in steps]
    step = run.step if run.step in names else names[0]
    forget: list[str] = []
    job_dead = (run.aep_status or "").upper() in {"FAILED", "CANCELLED", "CANCELLING"} or "failed" in (
        run.aep_status or ""
    )
    if run.status == "failed" and step in _RECREATE and (job_dead or "after" in (run.error or "")):
        step, forget = _RECREATE[step]
    start = names.index(step)
    index = c.STEP_TASKS.index(steps[start])
    key = rt.ledger.key(run_id)
    rt.redis.hdel(key, *[f"errors:{n}" for n in names], "error", "aep_status", *forget)
    if forget:
        rt.redis.hincrby(key, "generation", 1)
    rt.ledger.reset_cursor(index - 1, run_id)
    # The one transition out of a terminal status, so it bypasses the ledger's terminal guard.
    rt.redis.hset(key, "status", "queued")
    rt.ledger.event(run_id, step, "resumed", f"from {step}", step=step)
    _launch(run_id, steps[start:])
    return rt.ledger.get(run_id) or run


def run_summary(run: RunRecord) -> dict[str, Any]:
    """The run record for ``status --json``."""
    out = run.to_dict()
    out["request"] = json.loads(json.dumps(run.request))
    out["age_s"] = round(time.time() - run.created_at, 3)
    out["terminal"] = run.status in TERMINAL
    return out

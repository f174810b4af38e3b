"""The producer API: start, cancel and resume activation runs.

    from aep_activator import start_activation
    run_id = start_activation(ActivationRequest(...))      # or a dict / JSON string of one

Nothing is recorded unless the request validates. A run is recorded together with its first carrier
in one atomic write, and only then is its wake-up published on this package's Celery app (never on
Celery's fallback ``current_app``). If that publish fails, the run is still safe: the watchdog
publishes it within ``WATCHDOG_GRACE_S``. The same ``idempotency_key`` returns the same run and
starts nothing new; reused for a different request it is refused (:class:`IdempotencyConflict`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from pydantic import ValidationError

from aep_activator.aep.api.errors import QuotaExhausted
from aep_activator.aep.coordination.quota import QuotaUsage
from aep_activator.aep.coordination.runs import TERMINAL, Admission, Created, Event, FailureKind, RunRecord, RunStatus
from aep_activator.aep.pipeline.request import ActivationRequest, describe_validation_error
from aep_activator.aep.pipeline.scopes import Quota, quotas_of, specs
from aep_activator.config.settings import SettingsError
from aep_activator.tasks.celery import app
from aep_activator.tasks.flower_events import show_revoked
from aep_activator.tasks.runtime import Runtime, runtime
from aep_activator.tasks.wakeups import publish

log = logging.getLogger(__name__)


class InvalidRequest(ValueError):
    """The activation request does not validate. ``str()`` names each bad field."""


class IdempotencyConflict(InvalidRequest):
    """The idempotency key already belongs to a run of a different request: nothing new was started.

    ``run_id`` is that run. The same key must mean the same request (the IETF Idempotency-Key draft's
    rule, which the HTTP API answers with 422); who sends it (``started_by``) may differ.
    """

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


def parse_request(request: ActivationRequest | dict[str, Any] | str | bytes) -> ActivationRequest:
    if isinstance(request, ActivationRequest):
        return request
    try:
        if isinstance(request, str | bytes):
            return ActivationRequest.model_validate_json(request)
        return ActivationRequest.model_validate(request)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc, "invalid activation request")) from None


def with_sandbox(req: ActivationRequest, default: str | None, allowed: tuple[str, ...]) -> ActivationRequest:
    """``req`` naming its sandbox (``AEP_SANDBOX_NAME`` when it names none); outside the optional allow-list
    ``AEP_SANDBOXES`` it is refused here, before anything is recorded."""
    sandbox = req.sandbox or default
    if allowed and sandbox not in allowed:
        raise InvalidRequest(
            f"invalid activation request:\n  sandbox: {sandbox or '(the default sandbox)'!r} is not one of "
            f"AEP_SANDBOXES ({', '.join(allowed)})"
        )
    return req if sandbox == req.sandbox else req.model_copy(update={"sandbox": sandbox})


def start_activation(request: ActivationRequest | dict[str, Any] | str | bytes) -> str:
    """Validate, record and enqueue one run. Returns its run id.

    An invalid request raises :class:`InvalidRequest` naming every bad field, and nothing is recorded. The
    same ``idempotency_key`` returns the same run; with a different request it raises
    :class:`IdempotencyConflict` (an ``InvalidRequest``) and starts nothing.
    With ``on_quota="fail"`` a quota already used up raises :class:`QuotaExhausted` here, before anything
    is recorded (the slot itself is spent by the step that POSTs).
    """
    return start(request).run_id


def start(request: ActivationRequest | dict[str, Any] | str | bytes) -> Created:
    """:func:`start_activation`, returning what happened: ``created``, ``existing`` or ``relaunched``."""
    rt = runtime()
    s = rt.settings
    req = with_sandbox(parse_request(request), s.aep_sandbox_name, s.sandboxes)
    if req.callback_url is not None:
        from aep_activator.tasks.callbacks import CallbackRefused, check_url

        try:
            check_url(req.callback_url, s)
        except CallbackRefused as exc:
            raise InvalidRequest(f"invalid activation request:\n  {exc}") from None
    if not s.aep_org_id:
        raise SettingsError(
            "invalid configuration:\n  AEP_ORG_ID: required to record a run (AEP keeps its quotas per org)"
        )
    if req.sandbox is None:
        # Without x-sandbox-name AEP picks the org's default sandbox, whose name this system cannot learn:
        # its segment jobs and audiences would be counted and locked apart from the same sandbox by name.
        raise SettingsError(
            "invalid configuration:\n  AEP_SANDBOX_NAME: required to record a run whose request names no "
            "sandbox (AEP keeps segment-job quotas and audiences per sandbox; set it to the default one, e.g. prod)"
        )
    first = rt.plan.first(req)
    quotas = [specs(q, rt.step_config.quotas, org_id=s.aep_org_id or "", sandbox=req.sandbox,
                    schedule=req.from_schedule) for q in quotas_of(req.segment_job)]  # fmt: skip
    created = rt.ledger.create(
        req.wire(), started_by=req.started_by, first_step=first.name, run_id=uuid.uuid4().hex,
        idempotency_key=req.idempotency_key, lines=rt.quotas.admission_lines(quotas, time.time()),
        priority=0 if req.from_schedule else 1, refuse_unless_now=req.on_quota == "fail",
    )  # fmt: skip
    if created.verdict == "refused":
        adm = created.admission
        raise QuotaExhausted(
            f"a quota is used up for this run ({_explain(adm)}); on_quota=fail: nothing was recorded",
            quota=",".join(q["quota"] for q in (adm.quotas if adm else []) if q["verdict"] != "now"),
            reset_at=adm.opens_at if adm else 0.0,
        )
    if created.needs_wakeup:
        publish(app, rt, created.run_id, created.step, created.seq, created.generation)
    if created.verdict != "created" and req.idempotency_key:
        _same_request_or_raise(rt, req, created.run_id)
    return created


_WHO = ("started_by", "idempotency_key")


def _same_request_or_raise(rt: Runtime, req: ActivationRequest, run_id: str) -> None:
    """Raise :class:`IdempotencyConflict` when the key's run was started for another request."""
    record = rt.ledger.get(run_id, timeline=False)
    if record is None or not record.request:
        return  # the run's record is gone (its TTL): nothing to compare with
    try:
        # As this request was normalised: a run recorded before requests were given their sandbox at
        # enqueue (or recorded by another path) names none, which means the default one.
        stored = with_sandbox(ActivationRequest.model_validate(record.request), rt.settings.aep_sandbox_name, ()).wire()
    except ValidationError:
        return  # written by a layout this version cannot read: the ledger's own checks report it
    given = req.wire()
    differ = sorted(k for k in {*stored, *given} - set(_WHO) if stored.get(k) != given.get(k))
    if differ:
        raise IdempotencyConflict(
            f"invalid activation request:\n  idempotency_key: {req.idempotency_key!r} already belongs to run {run_id}, "
            f"started for a different request (it differs in {', '.join(differ)}); nothing new was started: "
            "send the same request again, or use a new key",
            run_id,
        )


def describe_admission(adm: Admission, *, now: float | None = None) -> str:
    """The admission in words: when the run is expected to spend its quotas."""
    import datetime as dt

    if adm.verdict == "now":
        return "expected to spend its quota slots in the current window"
    if adm.verdict == "never":
        return "a quota it needs has a limit of 0: it would wait forever; cancel it or raise the limit"
    when = dt.datetime.fromtimestamp(adm.opens_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    left = max(0.0, adm.opens_at - (time.time() if now is None else now))
    hours, minutes = int(left // 3600), int(left % 3600 // 60)
    return f"waits for the window that opens {when} (in {hours} h {minutes} min), place {adm.place} in line"


def _explain(adm: Admission | None) -> str:
    waits = [q for q in (adm.quotas if adm else []) if q["verdict"] != "now"]
    return "; ".join(f"{q['quota']}: {q['used']} of {q['limit']} used, {q['ahead']} ahead in line" for q in waits)


def known_sandboxes(rt: Runtime | None = None) -> list[str | None]:
    """The sandboxes this deployment serves: the default, the allow-list and the typed ones, in that order."""
    s = (rt or runtime()).settings
    return list(dict.fromkeys([s.aep_sandbox_name, *s.sandboxes, *s.sandbox_types]))


def quota_usage(rt: Runtime | None = None, sandboxes: list[str | None] | None = None) -> list[QuotaUsage]:
    """Every quota this deployment spends, as of now (Redis's clock): used, pending, limit, reset.

    The org's ad-hoc quota once, then each sandbox's daily and yearly segment-job quotas. Raises
    ``ValueError`` when AEP_ORG_ID is not set (a quota is kept per org).
    """
    rt = rt or runtime()
    s = rt.settings
    now = rt.quotas.server_time()
    limits = rt.step_config.quotas
    org = s.aep_org_id or ""
    out = [rt.quotas.usage(spec, now) for spec in specs(Quota.ADHOC, limits, org_id=org, sandbox=None)]
    for sandbox in sandboxes if sandboxes is not None else known_sandboxes(rt):
        out += [rt.quotas.usage(spec, now) for spec in specs(Quota.SEGMENT_JOBS, limits, org_id=org, sandbox=sandbox)]
    return out


def step_names(request: ActivationRequest) -> list[str]:
    """The steps ``request`` runs, in order (from the plan)."""
    return [s.name for s in runtime().plan.steps_for(request)]


def get_run(run_id: str) -> RunRecord | None:
    return runtime().ledger.get(run_id)


def cancel_run(run_id: str, *, actor: str = "cli", timeout_s: float | None = None) -> RunRecord:
    """Cancel a run: from the moment this returns, nothing is POSTed for it.

    If a step holds the run with a POST in flight, this waits (here, in the caller's process) for that
    step to record the answer, at most until its lease runs out; then it ends the run, frees its
    audiences, DELETEs its in-flight AEP job and marks its waiting step revoked in Flower.
    """
    rt = runtime()
    record = rt.ledger.get(run_id, timeline=False)
    if record is None:
        raise KeyError(run_id)
    lock_keys = rt.lock_keys(record)
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else rt.lease_s + 5)
    while True:
        result = rt.ledger.cancel(run_id, actor, lock_keys=lock_keys)
        if result.verdict != "wait" or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # the caller's process (CLI, API), never a worker
    if result.verdict == "cancelled":
        cancelled = rt.ledger.get(run_id, timeline=False) or record
        step = rt.plan.get(result.step)
        if step is not None and step.cancel is not None:
            try:
                step.cancel(rt.client, cancelled)
            except Exception as exc:
                log.warning("run %s: cancelling its AEP job failed: %s", run_id, exc)
                rt.ledger.note(run_id, Event(result.step, "cancel-failed", str(exc), pin=True))
        show_revoked(app, cancelled.task_id)
        from aep_activator.tasks.callbacks import run_ended

        run_ended(app, rt, run_id)  # a run cancelled here ends without a worker: its callback starts here
    elif result.verdict == "missing":
        raise KeyError(run_id)
    return rt.ledger.get(run_id) or record


def resume_run(run_id: str, *, actor: str = "cli") -> RunRecord:
    """Restart a failed run at the step that failed, reusing the AEP ids it already has.

    When that step was a poll whose AEP job ended FAILED or CANCELLED or outlived its deadline
    (``failure_kind`` ``aep_job_failed`` or ``deadline``), the run restarts at that job's create step
    instead: it POSTs a new job and spends quota again, under a new generation.
    """
    rt = runtime()
    record = rt.ledger.get(run_id, timeline=False)
    if record is None:
        raise KeyError(run_id)
    if record.status is not RunStatus.FAILED:
        raise ValueError(f"run {run_id} has status {record.status}; only a failed run can be resumed")
    req = ActivationRequest.model_validate(record.request)
    names = [s.name for s in rt.plan.steps_for(req)]
    failed_at = record.failure.step if record.failure and record.failure.step in names else record.step
    step = rt.plan[failed_at] if failed_at in names else rt.plan.first(req)
    forget: list[str] = []
    new_generation = False
    kind = record.failure.kind if record.failure else None
    if step.recreate and kind in (FailureKind.AEP_JOB_FAILED, FailureKind.DEADLINE):
        create = rt.plan[step.recreate]
        forget = [*step.forget, f"spent:{create.name}", "activated_at"]
        step, new_generation = create, True
    resumed = rt.ledger.resume(run_id, step.name, forget=forget, new_generation=new_generation, actor=actor)
    publish(app, rt, run_id, resumed.step, resumed.seq, resumed.generation)
    return rt.ledger.get(run_id) or record


def run_summary(run: RunRecord) -> dict[str, Any]:
    """The run record for ``status --json``."""
    out = run.to_dict()
    out["request"] = json.loads(json.dumps(run.request))
    out["age_s"] = round(time.time() - run.created_at, 3)
    out["terminal"] = run.status in TERMINAL
    return out

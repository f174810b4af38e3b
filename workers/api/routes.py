"""The ``/v1`` routes: the same producer functions the Python API and the CLI call (tasks/producer.py).

Every answer is JSON. Errors are ``{"error": message}`` (and ``fields`` for a 422, one per bad field).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from aep_activator.aep.api.errors import QuotaExhausted
from aep_activator.aep.coordination.runs import TERMINAL, RunStatus
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.config.validation import error_lines
from aep_activator.workers.api import views
from aep_activator.workers.api.auth import operator, principal
from aep_activator.workers.api.keys import Principal

router = APIRouter(prefix="/v1")


class QuotaForecast(BaseModel):
    quota: str
    verdict: Literal["now", "waits", "never"]
    used: int
    limit: int
    ahead: int = Field(description="admitted runs ahead of this one in the quota's line that have not spent yet")
    opens_at: float = Field(description="Unix time of the window it waits for (0: now)")
    place: int = Field(description="its place in that window's line (0: now)")


class Admission(BaseModel):
    """A forecast from the quota ledger when the run was recorded (admission reserves nothing): it spends
    its quotas in the current windows (``now``), or waits for the window opening at ``opens_at``."""

    verdict: Literal["now", "waits", "never"]
    opens_at: float
    place: int
    quotas: list[QuotaForecast]


class RunCreated(BaseModel):
    run_id: str
    verdict: Literal["created", "existing", "relaunched"] = Field(
        description="created; existing: the Idempotency-Key's run, untouched; relaunched: it had no carrier"
    )
    status: str
    step: str
    url: str
    admission: Admission | None = Field(
        default=None, description="when the run is expected to spend its quotas; null for an existing run"
    )


class Problem(BaseModel):
    error: str


class FieldProblem(BaseModel):
    field: str
    message: str


class Invalid(BaseModel):
    error: str
    fields: list[FieldProblem]


def invalid(lines: list[str], header: str = "invalid activation request") -> JSONResponse:
    fields = [{"field": f, "message": m.strip()} for f, _, m in (line.partition(": ") for line in lines)]
    return JSONResponse({"error": header, "fields": fields}, status_code=422)


@router.post("/runs", status_code=201, response_model=RunCreated,
             responses={200: {"model": RunCreated, "description": "the Idempotency-Key's existing run"},
                        422: {"model": Invalid}, 429: {"model": Problem}})  # fmt: skip
def create_run(
    body: ActivationRequest,
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Start a run. The `Idempotency-Key` header is the request's `idempotency_key`: the same key returns
    the same run (200) and starts nothing new. Invalid input: 422 naming every bad field; nothing is enqueued."""
    from aep_activator.tasks.producer import InvalidRequest, start

    data = body.wire()
    if idempotency_key is not None:
        if body.idempotency_key is not None and body.idempotency_key != idempotency_key.strip():
            return invalid(["idempotency_key: differs from the Idempotency-Key header"])
        data["idempotency_key"] = idempotency_key
    given = body.started_by if "started_by" in body.model_fields_set else None
    data["started_by"] = (who.actor.split(" ")[0] + (f" ({given})" if given else ""))[:200]
    try:
        req = ActivationRequest.model_validate(data)
        created = start(req)
    except ValidationError as exc:
        return invalid(error_lines(exc))
    except InvalidRequest as exc:
        return invalid([line.strip() for line in str(exc).splitlines()[1:]])
    except QuotaExhausted as exc:
        retry = max(1, int((exc.reset_at or 0) - time.time()))
        return JSONResponse({"error": exc.message, "quota": exc.quota, "reset_at": exc.reset_at}, status_code=429,
                            headers={"Retry-After": str(retry)})  # fmt: skip
    admission = Admission.model_validate(created.admission.to_dict()) if created.admission else None
    answer = RunCreated(run_id=created.run_id, verdict=created.verdict, status=created.status.value,
                        step=created.step, url=str(request.url_for("get_run", run_id=created.run_id).path),
                        admission=admission)  # fmt: skip
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if created.verdict == "existing" else 201)


@router.get("/runs")
def list_runs(
    who: Annotated[Principal, Depends(principal)],
    status: Annotated[RunStatus | None, Query()] = None,
    sandbox: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """The newest runs, optionally of one status and one sandbox."""
    return {"runs": [views.summary(r) for r in views.recent_runs(status=status, sandbox=sandbox, limit=limit)]}


@router.get("/runs/{run_id}", responses={404: {"model": Problem}})
def get_run(run_id: str, who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
    """One run: its record and step timeline (AEP ids, AEP statuses, waits, recoveries, who did what)."""
    from aep_activator.tasks.producer import get_run as read

    record = read(run_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id}")
    return views.detail(record)


@router.post("/runs/{run_id}/cancel", responses={404: {"model": Problem}, 409: {"model": Problem}})
def cancel_run(run_id: str, who: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
    """Cancel a run (role ops). From the answer on, nothing is POSTed for it; the timeline names the key."""
    from aep_activator.tasks.producer import cancel_run as cancel
    from aep_activator.tasks.producer import get_run as read

    record = read(run_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id}")
    if record.status in TERMINAL:
        raise HTTPException(409, f"run {run_id} is {record.status.value}")
    return views.detail(cancel(run_id, actor=who.actor))


@router.post("/runs/{run_id}/resume", responses={404: {"model": Problem}, 409: {"model": Problem}})
def resume_run(run_id: str, who: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
    """Restart a failed run at its failed step (role ops); the timeline names the key."""
    from aep_activator.tasks.producer import resume_run as resume

    try:
        return views.detail(resume(run_id, actor=who.actor))
    except KeyError:
        raise HTTPException(404, f"no run {run_id}") from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/quota")
def quota(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
    """Every quota this deployment spends: used, pending, limit and reset time of its current window."""
    from aep_activator.tasks.producer import quota_usage

    return {"quotas": [views.quota(u) for u in quota_usage()]}

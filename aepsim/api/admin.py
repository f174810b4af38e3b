"""Accounting and control routes under ``/simulator/`` (no gateway checks, no faults, not journaled).

- ``GET /simulator/stats``: calls and answer statuses per ``METHOD template``, jobs by kind and
  status, quota used per window (UTC day, or first day of the yearly window), tokens issued.
- ``GET /simulator/journal?since=<seq>``: every AEP/IMS request received, secrets masked.
- ``POST /simulator/reset``: clears state, journal, quotas and tokens; the config stays unless the
  optional body ``{"config": {...partial config...}}`` changes it.
- ``GET /simulator/fixture``; ``GET|PUT /simulator/config`` (PUT deep-merges a partial config;
  unknown keys or bad values → 400 naming the field).

Out of band: what AEP's UI or scheduler would create, not this system (issue 11). Each answers 200
with the created job or run, or the error the state machine raises (400, 403, 404, 429 in the
service's shape); a malformed body is a 400 naming the field and creates nothing.

- ``POST /simulator/admin/segment-jobs`` ``{"segmentIds": [...], "sandbox": "prod", "source": "ui"}``:
  ``source`` is ``ui`` (default: counts against the FAE quotas, as AEP counts UI runs), ``scheduler``
  (the nightly evaluation: counts against nothing) or ``api``.
- ``POST /simulator/admin/export-jobs`` ``{"job": {...an export job body...}, "sandbox": "prod"}``.
- ``POST /simulator/admin/flow-runs`` ``{"flowId": "...", "audiences": [...], "sandbox": "prod"}``:
  a *scheduled* run by AEP's scheduler (``createdClient`` = ``SCHEDULER_CLIENT``); ``audiences``
  defaults to every audience mapped to the dataflow.

``sandbox`` defaults to the fixture's default sandbox everywhere.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aep_activator.aep.api.models import ExportJobCreate
from aep_activator.aepsim.api.dispatch import Call, Reply, Route
from aep_activator.aepsim.api.errors import describe
from aep_activator.aepsim.state.errors import SimError

PREFIX = "/simulator"


def _fail(status: int, message: str) -> SimError:
    return SimError(status, {"message": message})


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OutOfBandSegmentJob(_Body):
    segmentIds: list[str] = Field(min_length=1)
    sandbox: str | None = None
    source: Literal["ui", "scheduler", "api"] = "ui"


class OutOfBandExportJob(_Body):
    job: ExportJobCreate
    sandbox: str | None = None


class AudienceMapping(_Body):
    """``POST /simulator/admin/mappings``: map an audience to a dataflow now (first activated now)."""

    flowId: str = Field(min_length=1)
    audience: str = Field(min_length=1)


class ScheduledFlowRun(_Body):
    flowId: str = Field(min_length=1)
    audiences: list[str] | None = None
    sandbox: str | None = None


def _object_body(call: Call) -> dict[str, Any]:
    if not call.request.body.strip():
        return {}
    data = call.json_body()
    if not isinstance(data, dict):
        raise call.fail(400, "expected a JSON object")
    return data


def _parse(call: Call, model: type[_Body]) -> Any:
    try:
        return model.model_validate(_object_body(call))
    except ValidationError as exc:
        raise call.fail(400, describe(exc)) from None


def _patched(call: Call, patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise call.fail(400, "config must be a JSON object")
    try:
        return call.ctx.apply_config(patch).model_dump()
    except ValidationError as exc:
        raise call.fail(400, describe(exc).replace("Invalid request body", "Invalid config")) from None


def stats(call: Call) -> Reply:
    return Reply(200, call.ctx.stats())


def journal(call: Call) -> Reply:
    since = call.int_arg("since", 0, 0)
    return Reply(200, {"entries": call.ctx.journal.since(since), "last_seq": call.ctx.journal.last_seq})


def reset(call: Call) -> Reply:
    body = _object_body(call)
    unknown = set(body) - {"config"}
    if unknown:
        raise call.fail(400, f"unknown reset option(s): {', '.join(sorted(unknown))}; only 'config'")
    config = _patched(call, body["config"]) if "config" in body else call.ctx.config.model_dump()
    call.ctx.reset()
    return Reply(200, {"status": "reset", "config": config})


def fixture(call: Call) -> Reply:
    return Reply(200, call.state.fixture.model_dump())


def get_config(call: Call) -> Reply:
    return Reply(200, call.ctx.config.model_dump())


def put_config(call: Call) -> Reply:
    return Reply(200, _patched(call, _object_body(call)))


def out_of_band_segment_job(call: Call) -> Reply:
    body: OutOfBandSegmentJob = _parse(call, OutOfBandSegmentJob)
    job = call.state.create_segment_job(body.segmentIds, sandbox_name=body.sandbox, source=body.source)
    return Reply(200, job)


def out_of_band_export_job(call: Call) -> Reply:
    body: OutOfBandExportJob = _parse(call, OutOfBandExportJob)
    return Reply(200, call.state.create_export_job(body.job, sandbox_name=body.sandbox))


def mapping(call: Call) -> Reply:
    body: AudienceMapping = _parse(call, AudienceMapping)
    return Reply(200, call.state.map_audience(body.flowId, body.audience))


def scheduled_flow_run(call: Call) -> Reply:
    body: ScheduledFlowRun = _parse(call, ScheduledFlowRun)
    return Reply(200, call.state.start_scheduled_run(body.flowId, body.audiences, sandbox_name=body.sandbox))


ROUTES: list[Route] = [
    Route("GET", f"{PREFIX}/stats", stats, "admin", _fail),
    Route("GET", f"{PREFIX}/journal", journal, "admin", _fail),
    Route("POST", f"{PREFIX}/reset", reset, "admin", _fail),
    Route("GET", f"{PREFIX}/fixture", fixture, "admin", _fail),
    Route("GET", f"{PREFIX}/config", get_config, "admin", _fail),
    Route("PUT", f"{PREFIX}/config", put_config, "admin", _fail),
    Route("POST", f"{PREFIX}/admin/segment-jobs", out_of_band_segment_job, "admin", _fail),
    Route("POST", f"{PREFIX}/admin/export-jobs", out_of_band_export_job, "admin", _fail),
    Route("POST", f"{PREFIX}/admin/flow-runs", scheduled_flow_run, "admin", _fail),
    Route("POST", f"{PREFIX}/admin/mappings", mapping, "admin", _fail),
]

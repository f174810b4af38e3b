"""The real AEP and IMS routes. Each parses the request with the shared wire models (``aep.api.models``),
calls one ``SimulatorState`` method and wraps the result in a ``Reply``. Paths come from
``aep.api.paths`` (aep-api.md §1.2). ``x-sandbox-name`` picks the sandbox (absent: the default).

Where the docs disagree (more in ``state/machine.py``'s docstring):

- segment job DELETE answers **204, no body** (doc and spec status; the doc's body is dropped);
  export job DELETE answers **200** ``{"status": true, "message": …}`` (the spec's answer);
- ad-hoc v2 is selected by ``Accept: application/vnd.adobe.adhoc.activation+json; version=2``;
  ``exportIds`` with v2 → 400; v1 accepts ``exportIds`` and the tutorial's ``exportId``;
- ``statusURL`` = ``{public_base_url or the request's scheme+host}/data/foundation/flowservice/runs/{id}``;
- flow-run statuses are lowercase (``processing``/``success``/``failed``), as every example;
- the flow-run list takes the Flow Service's ``property`` filters (any path, ``[]`` for arrays, AND
  across parameters; see ``state/queries.py``), ``orderby``, ``limit`` (1 to 100, S-DEST-YAML),
  ``continuationToken`` and ``count=true`` (answers ``{"count": n}``, the sort-and-filter guide).
  The answer is ``{"items": […], "_links": {}}``, with ``_links.next.href`` =
  ``/runs?…&continuationToken=…`` (relative to the Flow Service, like the spec's ``runs`` links)
  while more pages follow.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError

from aep_activator.aep.api import paths
from aep_activator.aep.api.models import (
    ADHOC_V2_ACCEPT,
    AdhocRunV1,
    AdhocRunV2,
    ExportJobCreate,
    ExportJobStatus,
    SegmentJobCreate,
    SegmentJobStatus,
)
from aep_activator.aepsim.api.dispatch import Call, Reply, Route
from aep_activator.aepsim.api.errors import describe, oauth_error
from aep_activator.aepsim.api.gateway import issue_token
from aep_activator.aepsim.state import queries
from aep_activator.aepsim.state.errors import SimError, adhoc_error, flow_error, ups_error


def _ims_fail(status: int, message: str) -> SimError:
    return oauth_error(status, "invalid_request", message)


def _flow_fail(status: int, message: str) -> SimError:
    return flow_error(status, message, "")


# -------------------------------------------------------------------------------------- IMS


def ims_token(call: Call) -> Reply:
    body = issue_token(
        call.request.form(), call.request.header("Authorization"), call.ctx.config, call.state.fixture, call.ctx.tokens
    )
    return Reply(200, body)


# -------------------------------------------------------------------------------------- segment jobs


def create_segment_job(call: Call) -> Reply:
    data = call.json_body()
    if isinstance(data, list):
        items: Any = data
    elif isinstance(data, dict) and set(data) <= {"segments", "schema"}:
        items = data.get("segments")  # the >1500-segments object form; "*" = all (aep-api.md §3.2)
    else:
        raise call.fail(400, 'Invalid request body: expected an array of {"segmentId": ...} objects')
    try:
        ids = [s.segmentId for s in SegmentJobCreate.model_validate({"segments": items}).segments]
    except ValidationError as exc:
        raise call.fail(400, describe(exc, root="segments" if isinstance(data, list) else None)) from None
    return Reply(200, call.state.create_segment_job(ids, org_id=call.org_id, sandbox_name=call.sandbox_name))


def list_segment_jobs(call: Call) -> Reply:
    status = call.request.arg("status")
    if status is not None and status not in SegmentJobStatus.__members__:
        raise call.fail(400, f"Unknown status {status!r}; expected one of {', '.join(SegmentJobStatus)}")
    limit = call.int_arg("limit", 100, 1, 1000)
    start = call.int_arg("start", 0, 0)
    sort = call.request.arg("sort")
    if sort is not None and sort not in ("creationTime:desc", "creationTime:asc"):
        raise call.fail(400, f"Unsupported sort {sort!r}; use creationTime:desc or creationTime:asc")
    segment_id = None
    prop = call.request.arg("property")
    if prop:
        if not prop.startswith("segments~segmentId=="):
            raise call.fail(400, f"Unsupported property filter {prop!r}; use segments~segmentId==<id>")
        segment_id = prop.removeprefix("segments~segmentId==")
    sort = sort or call.ctx.config.lists.segment_jobs_sort
    jobs, total, more = call.state.list_segment_jobs(
        status=status,
        limit=limit,
        start=start,
        descending=sort.endswith("desc"),
        segment_id=segment_id,
        sandbox_name=call.sandbox_name,
    )
    following = {"start": str(start + 1), "limit": str(limit), "sort": sort}
    if status:
        following["status"] = status
    if prop:
        following["property"] = prop
    nxt = {"href": "/segment/jobs?" + "&".join(f"{k}={v}" for k, v in following.items())} if more else {}
    page = {"totalCount": total, "pageSize": len(jobs)}
    return Reply(200, {"_page": page, "children": jobs, "_links": {"next": nxt}})


def get_segment_job(call: Call) -> Reply:
    return Reply(200, call.state.get_segment_job(call.params["id"], sandbox_name=call.sandbox_name))


def cancel_segment_job(call: Call) -> Reply:
    # 204 with no body: the status both doc and spec give; the doc's body contradicts 204 (§3.6).
    call.state.cancel_segment_job(call.params["id"], sandbox_name=call.sandbox_name)
    return Reply(204)


# -------------------------------------------------------------------------------------- export jobs


def create_export_job(call: Call) -> Reply:
    data = call.json_body()
    if not isinstance(data, dict):
        raise call.fail(400, "Invalid request body: expected a JSON object")
    try:
        request = ExportJobCreate.model_validate(data)
    except ValidationError as exc:
        raise call.fail(400, describe(exc)) from None
    job = call.state.create_export_job(request, org_id=call.org_id, sandbox_name=call.sandbox_name)
    return Reply(200, job, {"X-Location": f"/export/jobs/{job['id']}"})


def list_export_jobs(call: Call) -> Reply:
    status = call.request.arg("status")
    if status is not None and status not in ExportJobStatus.__members__:
        raise call.fail(400, f"Unknown status {status!r}; expected one of {', '.join(ExportJobStatus)}")
    limit = call.int_arg("limit", 100, 1, 1000)
    offset = call.request.arg("offset")
    records, next_offset = call.state.list_export_jobs(
        limit=limit, offset=offset, status=status, sandbox_name=call.sandbox_name
    )
    nxt = ""
    if next_offset:
        nxt = f"/export/jobs/?limit={limit}&offset={next_offset}"
        nxt += f"&status={status}" if status else ""
    page_offset = f"{records[0]['creationTime']}_{records[0]['id']}" if records else ""
    page = {"sortField": "createdTime", "sort": "desc", "pageOffset": page_offset, "pageSize": len(records)}
    return Reply(200, {"records": records, "page": page, "link": {"next": nxt}})


def get_export_job(call: Call) -> Reply:
    return Reply(200, call.state.get_export_job(call.params["id"], sandbox_name=call.sandbox_name))


def cancel_export_job(call: Call) -> Reply:
    # 200 with the documented body (the spec's answer; docs also say 204, aep-api.md §4.5).
    return Reply(200, call.state.cancel_export_job(call.params["id"], sandbox_name=call.sandbox_name))


# -------------------------------------------------------------------------------------- ad-hoc activation


def is_v2(call: Call) -> bool:
    accept = call.request.headers.get("Accept", "").replace(" ", "").lower()
    return ADHOC_V2_ACCEPT.replace(" ", "").lower() in accept


def start_adhoc_run(call: Call) -> Reply:
    data = call.json_body()
    if not isinstance(data, dict):
        raise call.fail(400, "Invalid request body: expected a JSON object with activationInfo")
    v2 = is_v2(call)
    if v2 and ("exportIds" in data or "exportId" in data):
        raise call.fail(
            400,
            "exportIds must not be sent with version 2 of the ad-hoc activation API "
            f"(Accept: {ADHOC_V2_ACCEPT}); remove exportIds or drop the version header",
        )
    try:
        if v2:
            info, export_ids = AdhocRunV2.model_validate(data).activationInfo, None
        else:
            v1 = AdhocRunV1.model_validate(data)
            info, export_ids = v1.activationInfo, list(v1.exportIds)
    except ValidationError as exc:
        raise call.fail(400, describe(exc)) from None
    started = call.state.start_adhoc_run(
        info,
        export_ids,
        org_id=call.org_id,
        sandbox_name=call.sandbox_name,
        actor=call.request.headers.get("x-api-key", "sim-client"),
    )
    base = (call.ctx.config.public_base_url or call.request.base_url).rstrip("/")
    order = [
        {"segment": s.segment, "order": s.order, "statusURL": base + paths.FLOW_RUN.format(id=s.run_id)}
        for s in started
    ]
    return Reply(200, {"order": order})


# -------------------------------------------------------------------------------------- flow runs


def list_flow_runs(call: Call) -> Reply:
    values = list(call.request.query.get("property", []))
    clauses = queries.parse_properties(values, lambda m: call.fail(400, m))
    limit = call.int_arg("limit", 100, 1, 100)
    orderby = call.request.arg("orderby")
    token = call.request.arg("continuationToken")
    count = (call.request.arg("count") or "false").lower()
    if count not in ("true", "false"):
        raise call.fail(400, f"Query parameter 'count' must be true or false, got {count!r}")
    page = call.state.flow_run_page(
        clauses, orderby=orderby, limit=limit, token=token, sandbox_name=call.sandbox_name
    )
    if count == "true":
        return Reply(200, {"count": page.total})
    links: dict[str, Any] = {}
    if page.next_token:
        kept = [(k, v) for k, vs in call.request.query.items() if k != "continuationToken" for v in vs]
        links["next"] = {"href": "/runs?" + urlencode([*kept, ("continuationToken", page.next_token)])}
    return Reply(200, {"items": page.items, "_links": links})


def get_flow_run(call: Call) -> Reply:
    return Reply(200, {"items": [call.state.get_flow_run(call.params["id"], sandbox_name=call.sandbox_name)]})


def get_flow(call: Call) -> Reply:
    return Reply(200, {"items": [call.state.get_flow(call.params["id"], sandbox_name=call.sandbox_name)]})


ROUTES: list[Route] = [
    Route("POST", paths.IMS_TOKEN, ims_token, "ims", _ims_fail),
    Route("POST", paths.SEGMENT_JOBS, create_segment_job, "aep", ups_error),
    Route("GET", paths.SEGMENT_JOBS, list_segment_jobs, "aep", ups_error),
    Route("GET", paths.SEGMENT_JOB, get_segment_job, "aep", ups_error),
    Route("DELETE", paths.SEGMENT_JOB, cancel_segment_job, "aep", ups_error),
    Route("POST", paths.EXPORT_JOBS, create_export_job, "aep", ups_error),
    Route("GET", paths.EXPORT_JOBS, list_export_jobs, "aep", ups_error),
    Route("GET", paths.EXPORT_JOB, get_export_job, "aep", ups_error),
    Route("DELETE", paths.EXPORT_JOB, cancel_export_job, "aep", ups_error),
    Route("POST", paths.ADHOC_RUN, start_adhoc_run, "aep", adhoc_error),
    Route("GET", paths.FLOW_RUNS, list_flow_runs, "aep", _flow_fail),
    Route("GET", paths.FLOW_RUN, get_flow_run, "aep", _flow_fail),
    Route("GET", paths.FLOW, get_flow, "aep", _flow_fail),
]

"""Handlers for the real AEP and IMS paths. Each parses the request with the shared wire models
(``aep.models``), calls one ``SimulatorState`` method and wraps the result in a ``Reply``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from aep_activator.aep.api.models import (
    ADHOC_V2_ACCEPT,
    AdhocRunV1,
    AdhocRunV2,
    ExportJobCreate,
    ExportJobStatus,
    SegmentJobCreate,
    SegmentJobStatus,
)
from aep_activator.aepsim.errors import SimError, adhoc_error, flow_error
from aep_activator.aepsim.gateway import issue_token
from aep_activator.aepsim.http_base import Reply, SimHandler, describe

UPS = "/data/core/ups"
FLOWS = "/data/foundation/flowservice"


class ImsTokenHandler(SimHandler):
    template = "/ims/token/v3"
    aep = False

    async def post(self) -> None:
        await self.serve(self._token)

    def _token(self) -> Reply:
        names = ("grant_type", "client_id", "client_secret", "scope", "scopes")
        params = {k: self.get_argument(k) for k in names if self.get_argument(k, None)}
        body = issue_token(
            params, self.request.headers.get("Authorization"), self.ctx.config, self.state.fixture, self.ctx.tokens
        )
        return Reply(200, body)


# -------------------------------------------------------------------------------------- segment jobs


class SegmentJobsHandler(SimHandler):
    template = f"{UPS}/segment/jobs"

    async def post(self) -> None:
        await self.serve(self._create)

    async def get(self) -> None:
        await self.serve(self._list)

    def _create(self) -> Reply:
        data = self.json_body()
        if isinstance(data, list):
            items: Any = data
        elif isinstance(data, dict) and set(data) <= {"segments", "schema"}:
            items = data.get("segments")  # the >1500-segments object form; "*" = all (aep-api.md §3.2)
        else:
            raise self.fail(400, 'Invalid request body: expected an array of {"segmentId": ...} objects')
        try:
            ids = [s.segmentId for s in SegmentJobCreate.model_validate({"segments": items}).segments]
        except ValidationError as exc:
            raise self.fail(400, describe(exc, root="segments" if isinstance(data, list) else None)) from None
        job = self.state.create_segment_job(
            ids, org_id=self.header_or_none("x-gw-ims-org-id"), sandbox_name=self.header_or_none("x-sandbox-name")
        )
        return Reply(200, job)

    def _list(self) -> Reply:
        status = self.get_query_argument("status", None) or None
        if status is not None and status not in SegmentJobStatus.__members__:
            raise self.fail(400, f"Unknown status {status!r}; expected one of {', '.join(SegmentJobStatus)}")
        limit = self.int_arg("limit", 100, 1, 1000)
        start = self.int_arg("start", 0, 0)
        sort = self.get_query_argument("sort", "creationTime:desc")
        if sort not in ("creationTime:desc", "creationTime:asc"):
            raise self.fail(400, f"Unsupported sort {sort!r}; use creationTime:desc or creationTime:asc")
        segment_id = None
        prop = self.get_query_argument("property", None)
        if prop:
            if not prop.startswith("segments~segmentId=="):
                raise self.fail(400, f"Unsupported property filter {prop!r}; use segments~segmentId==<id>")
            segment_id = prop.removeprefix("segments~segmentId==")
        jobs, total, more = self.state.list_segment_jobs(
            status=status, limit=limit, start=start, descending=sort.endswith("desc"), segment_id=segment_id
        )
        following = {"start": str(start + 1), "limit": str(limit), "sort": sort}
        if status:
            following["status"] = status
        if prop:
            following["property"] = prop
        nxt = {"href": "/segment/jobs?" + "&".join(f"{k}={v}" for k, v in following.items())} if more else {}
        return Reply(
            200, {"_page": {"totalCount": total, "pageSize": len(jobs)}, "children": jobs, "_links": {"next": nxt}}
        )


class SegmentJobHandler(SimHandler):
    template = f"{UPS}/segment/jobs/{{id}}"

    async def get(self, job_id: str) -> None:
        await self.serve(lambda: Reply(200, self.state.get_segment_job(job_id)))

    async def delete(self, job_id: str) -> None:
        # 204 with no body: the status both doc and spec give; the doc's body contradicts 204 (§3.6).
        await self.serve(lambda: (self.state.cancel_segment_job(job_id), Reply(204))[1])


# -------------------------------------------------------------------------------------- export jobs


class ExportJobsHandler(SimHandler):
    template = f"{UPS}/export/jobs"

    async def post(self) -> None:
        await self.serve(self._create)

    async def get(self) -> None:
        await self.serve(self._list)

    def _create(self) -> Reply:
        data = self.json_body()
        if not isinstance(data, dict):
            raise self.fail(400, "Invalid request body: expected a JSON object")
        try:
            request = ExportJobCreate.model_validate(data)
        except ValidationError as exc:
            raise self.fail(400, describe(exc)) from None
        job = self.state.create_export_job(request, org_id=self.header_or_none("x-gw-ims-org-id"))
        return Reply(200, job, {"X-Location": f"/export/jobs/{job['id']}"})

    def _list(self) -> Reply:
        status = self.get_query_argument("status", None) or None
        if status is not None and status not in ExportJobStatus.__members__:
            raise self.fail(400, f"Unknown status {status!r}; expected one of {', '.join(ExportJobStatus)}")
        limit = self.int_arg("limit", 100, 1, 1000)
        offset = self.get_query_argument("offset", None) or None
        records, next_offset = self.state.list_export_jobs(limit=limit, offset=offset, status=status)
        nxt = ""
        if next_offset:
            nxt = f"/export/jobs/?limit={limit}&offset={next_offset}"
            nxt += f"&status={status}" if status else ""
        page_offset = f"{records[0]['creationTime']}_{records[0]['id']}" if records else ""
        return Reply(
            200,
            {
                "records": records,
                "page": {
                    "sortField": "createdTime",
                    "sort": "desc",
                    "pageOffset": page_offset,
                    "pageSize": len(records),
                },
                "link": {"next": nxt},
            },
        )


class ExportJobHandler(SimHandler):
    template = f"{UPS}/export/jobs/{{id}}"

    async def get(self, job_id: str) -> None:
        await self.serve(lambda: Reply(200, self.state.get_export_job(job_id)))

    async def delete(self, job_id: str) -> None:
        # 200 with the documented body (the spec's answer; docs also say 204, aep-api.md §4.5).
        await self.serve(lambda: Reply(200, self.state.cancel_export_job(job_id)))


# -------------------------------------------------------------------------------------- ad-hoc activation


class AdhocRunHandler(SimHandler):
    template = "/data/core/activation/disflowprovider/adhocrun"

    def fail(self, status: int, message: str) -> SimError:
        return adhoc_error(status, message)

    async def post(self) -> None:
        await self.serve(self._run)

    def is_v2(self) -> bool:
        accept = self.request.headers.get("Accept", "").replace(" ", "").lower()
        return ADHOC_V2_ACCEPT.replace(" ", "").lower() in accept

    def _run(self) -> Reply:
        data = self.json_body()
        if not isinstance(data, dict):
            raise self.fail(400, "Invalid request body: expected a JSON object with activationInfo")
        v2 = self.is_v2()
        if v2 and ("exportIds" in data or "exportId" in data):
            raise self.fail(
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
            raise self.fail(400, describe(exc)) from None
        started = self.state.start_adhoc_run(
            info,
            export_ids,
            org_id=self.header_or_none("x-gw-ims-org-id"),
            sandbox_name=self.header_or_none("x-sandbox-name"),
            actor=self.request.headers.get("x-api-key", "sim-client"),
        )
        base = self.ctx.config.public_base_url or f"{self.request.protocol}://{self.request.host}"
        order = [
            {"segment": s.segment, "order": s.order, "statusURL": f"{base.rstrip('/')}{FLOWS}/runs/{s.run_id}"}
            for s in started
        ]
        return Reply(200, {"order": order})


# -------------------------------------------------------------------------------------- flow runs


class FlowRunsHandler(SimHandler):
    template = f"{FLOWS}/runs"

    def fail(self, status: int, message: str) -> SimError:
        return flow_error(status, message, "")

    async def get(self) -> None:
        await self.serve(self._list)

    def _list(self) -> Reply:
        filters: dict[str, Any] = {}
        for prop in self.get_query_arguments("property"):
            for clause in prop.split("&"):
                key, sep, value = clause.partition("==")
                if not sep or key not in ("flowId", "metrics.statusSummary.status"):
                    raise self.fail(
                        400,
                        f"Unsupported property filter {clause!r}; supported: flowId==<id>, "
                        "metrics.statusSummary.status==<status>",
                    )
                filters["flow_id" if key == "flowId" else "status"] = value
        limit = self.int_arg("limit", 100, 1, 100)
        return Reply(200, {"items": self.state.list_flow_runs(limit=limit, **filters)})


class FlowRunHandler(SimHandler):
    template = f"{FLOWS}/runs/{{id}}"

    def fail(self, status: int, message: str) -> SimError:
        return flow_error(status, message, "")

    async def get(self, run_id: str) -> None:
        await self.serve(lambda: Reply(200, {"items": [self.state.get_flow_run(run_id)]}))

"""The AEP resources the chain uses, as groups of typed calls on one :class:`AEPClient`.

Lists page the way each API documents (aep-api.md): segment jobs by ``start`` page index with
``sort=creationTime:desc|asc``; export jobs newest first by the opaque ``offset`` of ``link.next``;
flow runs by ``continuationToken`` (``_links.next``), at most 100 a page, with ``orderby``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import MalformedResponse
from aep_activator.aep.api.models import (
    ADHOC_V2_ACCEPT,
    AdhocRunResponse,
    AdhocRunV1,
    AdhocRunV2,
    CancelResponse,
    ExportJob,
    ExportJobCreate,
    ExportJobList,
    ExportJobStatus,
    Flow,
    FlowList,
    FlowRun,
    FlowRunList,
    SegmentJob,
    SegmentJobCreate,
    SegmentJobList,
    SegmentJobStatus,
)
from aep_activator.aep.api.paths import ADHOC_RUN, EXPORT_JOBS, FLOW_RUNS, FLOWS, SEGMENT_JOBS


def _id(value: str) -> str:
    if not value or not str(value).strip():
        raise ValueError("an id must be a non-empty string")
    return quote(str(value), safe="")


class SegmentJobs:
    def __init__(self, client: AEPClient) -> None:
        self._c = client

    def iter(
        self,
        *,
        segment_id: str | None = None,
        page_size: int = 100,
        max_pages: int = 10,
        sort: str = "creationTime:desc",
    ) -> Iterator[tuple[int, SegmentJobList]]:
        """Pages ``(index, page)`` in ``sort`` order, following ``_links.next`` for at most ``max_pages``."""
        for start in range(max_pages):
            page = self.list(limit=page_size, start=start, sort=sort, segment_id=segment_id)
            yield start, page
            if not page.has_next or not page.children:
                return

    def create(self, segment_ids: list[str]) -> SegmentJob:
        body = SegmentJobCreate.of(segment_ids).wire()
        return self._c.parse(self._c.request("POST", SEGMENT_JOBS, json=body), SegmentJob)

    def get(self, job_id: str) -> SegmentJob:
        return self._c.parse(self._c.request("GET", f"{SEGMENT_JOBS}/{_id(job_id)}"), SegmentJob)

    def list(
        self,
        *,
        status: SegmentJobStatus | None = None,
        limit: int = 100,
        start: int | None = None,
        sort: str = "creationTime:desc",
        segment_id: str | None = None,
    ) -> SegmentJobList:
        params: dict[str, Any] = {"limit": limit, "sort": sort}
        if status is not None:
            params["status"] = status.value
        if start is not None:
            params["start"] = start
        if segment_id is not None:
            params["property"] = f"segments~segmentId=={segment_id}"
        return self._c.parse(self._c.request("GET", SEGMENT_JOBS, params=params), SegmentJobList)

    def cancel(self, job_id: str) -> CancelResponse | None:
        resp = self._c.request("DELETE", f"{SEGMENT_JOBS}/{_id(job_id)}")
        return self._c.parse(resp, CancelResponse) if resp.content.strip() else None


class ExportJobs:
    def __init__(self, client: AEPClient) -> None:
        self._c = client

    def create(self, spec: ExportJobCreate) -> ExportJob:
        return self._c.parse(self._c.request("POST", EXPORT_JOBS, json=spec.wire()), ExportJob)

    def get(self, job_id: str) -> ExportJob:
        return self._c.parse(self._c.request("GET", f"{EXPORT_JOBS}/{_id(job_id)}"), ExportJob)

    def list(
        self, *, limit: int = 100, offset: str | None = None, status: ExportJobStatus | None = None
    ) -> ExportJobList:
        params: dict[str, Any] = {"limit": limit}
        if offset:
            params["offset"] = offset
        if status is not None:
            params["status"] = status.value
        return self._c.parse(self._c.request("GET", EXPORT_JOBS, params=params), ExportJobList)

    def iter(self, *, page_size: int = 100, max_pages: int = 10) -> Iterator[ExportJob]:
        """Newest first, following ``link.next`` for at most ``max_pages`` pages."""
        offset: str | None = None
        for _ in range(max_pages):
            page = self.list(limit=page_size, offset=offset)
            yield from page.records
            offset = page.next_offset
            if not offset or not page.records:
                return

    def cancel(self, job_id: str) -> CancelResponse | None:
        resp = self._c.request("DELETE", f"{EXPORT_JOBS}/{_id(job_id)}")
        return self._c.parse(resp, CancelResponse) if resp.content.strip() else None


class Activations:
    def __init__(self, client: AEPClient) -> None:
        self._c = client

    def run(
        self, activation_info: dict[str, list[str]], *, export_ids: list[str] | None = None, version: int = 1
    ) -> AdhocRunResponse:
        """Trigger an ad-hoc activation. v1 needs ``export_ids``; v2 must not have them."""
        if version == 2:
            if export_ids:
                raise ValueError("ad-hoc v2 takes no export ids")
            body = AdhocRunV2(activationInfo=activation_info).wire()
            headers: dict[str, str | None] = {"Accept": ADHOC_V2_ACCEPT}
        elif version == 1:
            body = AdhocRunV1.model_validate({"activationInfo": activation_info, "exportIds": export_ids}).wire()
            # v1 sends no Accept header at all (the ad-hoc spec: "Without this header, v1 behavior applies").
            headers = {"Accept": None}
        else:
            raise ValueError("version must be 1 or 2")
        resp = self._c.request("POST", ADHOC_RUN, json=body, headers=headers)
        return self._c.parse(resp, AdhocRunResponse)


class Flows:
    def __init__(self, client: AEPClient) -> None:
        self._c = client

    def get(self, flow_id: str) -> Flow:
        """A destination dataflow with its mapped audiences (``GET /flowservice/flows/{id}``)."""
        body = self._c.parse(self._c.request("GET", f"{FLOWS}/{_id(flow_id)}"), FlowList)
        if not body.items:
            raise MalformedResponse(f"dataflow {flow_id}: answer has no items", url=f"{FLOWS}/{flow_id}")
        return body.items[0]


class FlowRuns:
    def __init__(self, client: AEPClient) -> None:
        self._c = client

    def get(self, run_id_or_status_url: str) -> FlowRun:
        """One flow run, by id or by the ``statusURL`` an ad-hoc order returned.

        Only the run id is taken from a URL: the request always goes to our own base URL, so a
        hostile ``statusURL`` cannot make us send the bearer token to another host.
        """
        run_id = run_id_or_status_url
        if "/" in run_id:
            run_id = urlsplit(run_id).path.rstrip("/").rsplit("/", 1)[-1]
        body = self._c.parse(self._c.request("GET", f"{FLOW_RUNS}/{_id(run_id)}"), FlowRunList)
        if not body.items:
            raise MalformedResponse(f"flow run {run_id}: answer has no items", url=f"{FLOW_RUNS}/{run_id}")
        return body.items[0]

    def list(
        self,
        *,
        flow_id: str,
        limit: int = 100,
        orderby: str | None = "-createdAt",
        continuation_token: str | None = None,
        status: str | None = None,
    ) -> FlowRunList:
        params: dict[str, Any] = {"property": f"flowId=={flow_id}", "limit": limit}
        if status:
            params["property"] = [params["property"], f"metrics.statusSummary.status=={status}"]
        if orderby:
            params["orderby"] = orderby
        if continuation_token:
            params["continuationToken"] = continuation_token
        return self._c.parse(self._c.request("GET", FLOW_RUNS, params=params), FlowRunList)

    def iter(self, *, flow_id: str, page_size: int = 100, max_pages: int = 10) -> Iterator[FlowRunList]:
        """Pages of ``flow_id``'s runs, newest first, following ``_links.next`` for at most ``max_pages``."""
        token: str | None = None
        for _ in range(max_pages):
            page = self.list(flow_id=flow_id, limit=page_size, continuation_token=token)
            yield page
            token = page.next_token
            if not token or not page.items:
                return

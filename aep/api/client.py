"""The AEP client: one explicit object, resource groups, typed answers, one error tree.

    client = AEPClient(base_url, tokens=provider, api_key=..., org_id=..., sandbox="prod")
    job = client.segment_jobs.create(["4afe34ae-…"])
    job = client.segment_jobs.get(job.id)
    exp = client.export_jobs.create(ExportJobCreate(...))
    res = client.activations.run({"<dataflow>": ["<audience>"]}, export_ids=[exp.id])      # v1
    res = client.activations.run({"<dataflow>": ["<audience>"]}, version=2)                # v2
    run = client.flow_runs.get(res.order[0].statusURL)

Retries: the transport retries connection failures and 5xx for idempotent methods only (urllib3
``Retry``); a POST is never re-sent automatically, because a second ``POST /segment/jobs`` burns a
second on-demand evaluation. Everything else is the caller's decision, made from the error type.
A 401 triggers one token refresh and one re-send (AEP did not act on a request it refused).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from pydantic import BaseModel, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from aep_activator.aep.api.auth import TokenProvider
from aep_activator.aep.api.errors import AuthError, MalformedResponse, error_from_exception, error_from_response
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
    FlowRun,
    FlowRunList,
    SegmentJob,
    SegmentJobCreate,
    SegmentJobList,
    SegmentJobStatus,
)
from aep_activator.aep.api.paths import ADHOC_RUN, EXPORT_JOBS, FLOW_RUNS, SEGMENT_JOBS

M = TypeVar("M", bound=BaseModel)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Answers larger than this are refused as malformed rather than read into a worker's memory."""



def make_session(*, retries: int = 2, pool_size: int = 10) -> requests.Session:
    """A session whose transport retries only what is safe to repeat.

    ``allowed_methods`` excludes POST, so read errors and 5xx after a POST was sent surface as
    ``OutcomeUnknown``. Connect errors are retried for every method: nothing was sent. The backoff is
    sub-second on purpose: longer waits belong to the task layer, which reschedules instead of sleeping.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=IDEMPOTENT,
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=0.1,
        backoff_max=1.0,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    # requests re-reads proxy settings from the environment on every request (a quarter of a call's
    # time in the benchmark). Read them once here instead; NO_PROXY is not consulted per host then.
    session.trust_env = False
    session.proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https")}
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class AEPClient:
    def __init__(
        self,
        base_url: str,
        *,
        tokens: TokenProvider,
        api_key: str,
        org_id: str,
        sandbox: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._api_key = api_key
        self._org_id = org_id
        self._sandbox = sandbox
        self._session = session or make_session()
        self._timeout = timeout
        self._max_body = max_body_bytes
        self.segment_jobs = SegmentJobs(self)
        self.export_jobs = ExportJobs(self)
        self.activations = Activations(self)
        self.flow_runs = FlowRuns(self)

    def __repr__(self) -> str:
        return f"AEPClient({self.base_url!r}, org_id={self._org_id!r}, sandbox={self._sandbox!r})"

    def close(self) -> None:
        self._session.close()

    def _headers(self, token: str, extra: dict[str, str] | None, has_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "x-api-key": self._api_key,
            "x-gw-ims-org-id": self._org_id,
            "Accept": "application/json",
        }
        if self._sandbox:
            headers["x-sandbox-name"] = self._sandbox
        if has_body:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send one request; return a 2xx answer with its body read, or raise an ``AEPError``."""
        url = self.base_url + path
        idempotent = method.upper() in IDEMPOTENT
        for attempt in (1, 2):
            token = self._tokens.token()
            try:
                resp = self._session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=self._headers(token, headers, json is not None),
                    timeout=self._timeout,
                    stream=True,
                    allow_redirects=False,  # a redirected POST would be re-sent, and our headers with it
                )
                self._read_body(resp)
            except requests.RequestException as exc:
                raise error_from_exception(exc, method=method, url=url, idempotent=idempotent) from None
            if 200 <= resp.status_code < 300:
                return resp
            err = error_from_response(resp, idempotent=idempotent)
            if isinstance(err, AuthError) and resp.status_code == 401 and attempt == 1:
                self._tokens.invalidate(token)
                continue
            raise err
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_capped(self, resp: requests.Response) -> bytes:
        """The body, at most ``max_body + 1`` bytes, read in small chunks.

        Not ``raw.read(max_body + 1)``: urllib3 sizes a buffer by the amount asked for, so every answer,
        however small, briefly cost 8 MB, and a worker's heap never gave that back (+100 MB RSS per
        pool process in the benchmark).
        """
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.raw.stream(64 * 1024, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > self._max_body:
                break
        return b"".join(chunks)

    def _read_body(self, resp: requests.Response) -> None:
        # Read at most max_body + 1 bytes: a hostile or broken answer must not exhaust a worker.
        # With stream=True the body is read here, outside requests: urllib3's own errors (a read
        # timeout or a reset mid-body) must become requests exceptions so they map to the error tree
        # (a POST whose answer broke off is OutcomeUnknown, never a stray urllib3 exception).
        try:
            data = self._read_capped(resp)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc, request=resp.request, response=resp) from exc
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc, request=resp.request, response=resp) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc, request=resp.request, response=resp) from exc
        finally:
            resp.close()
        if len(data) > self._max_body:
            raise MalformedResponse(
                f"answer larger than {self._max_body} bytes",
                status=resp.status_code,
                method=resp.request.method if resp.request else None,
                url=resp.url,
            )
        resp._content = data
        resp._content_consumed = True  # type: ignore[attr-defined]

    def parse(self, resp: requests.Response, model: type[M]) -> M:
        """The answer as ``model``; anything else (HTML, wrong types, unknown status) is malformed."""
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            ctype = resp.headers.get("Content-Type", "?")
            raise MalformedResponse(
                f"unexpected {model.__name__} answer ({ctype}): {where}: {first['msg']}",
                status=resp.status_code,
                request_id=resp.headers.get("x-request-id"),
                method=resp.request.method if resp.request else None,
                url=resp.url,
            ) from None


def _id(value: str) -> str:
    if not value or not str(value).strip():
        raise ValueError("an id must be a non-empty string")
    return quote(str(value), safe="")


class SegmentJobs:
    def __init__(self, client: AEPClient) -> None:
        self._c = client

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
            headers = {"Accept": ADHOC_V2_ACCEPT}
        elif version == 1:
            body = AdhocRunV1.model_validate({"activationInfo": activation_info, "exportIds": export_ids}).wire()
            headers = {}
        else:
            raise ValueError("version must be 1 or 2")
        resp = self._c.request("POST", ADHOC_RUN, json=body, headers=headers)
        return self._c.parse(resp, AdhocRunResponse)


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

    def list(self, *, flow_id: str, limit: int = 50) -> FlowRunList:
        params = {"property": f"flowId=={flow_id}", "limit": limit}
        return self._c.parse(self._c.request("GET", FLOW_RUNS, params=params), FlowRunList)

"""The AEP client: one explicit object, resource groups, typed answers, one error tree.

    client = AEPClient(base_url, tokens=provider, api_key=..., org_id=..., sandbox="prod")
    job = client.segment_jobs.create(["4afe34ae-…"])      # resource groups: aep/api/resources.py
    job = client.segment_jobs.get(job.id)
    exp = client.export_jobs.create(ExportJobCreate(...))
    res = client.activations.run({"<dataflow>": ["<audience>"]}, export_ids=[exp.id])      # v1
    res = client.activations.run({"<dataflow>": ["<audience>"]}, version=2)                # v2
    run = client.flow_runs.get(res.order[0].statusURL)

Retries: the transport retries connection failures and 5xx for idempotent methods only (urllib3
``Retry``); a POST is never re-sent automatically, because a second ``POST /segment/jobs`` burns a
second on-demand evaluation. Everything else is the caller's decision, made from the error type.
A 401 triggers one token refresh and one re-send (AEP did not act on a request it refused).

The transport is a ``requests.Session`` (aep/api/transport.py), whose urllib3 pool most calls use
directly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from json import dumps
from typing import Any, TypeVar

import requests
import urllib3
from pydantic import BaseModel, ValidationError

from aep_activator.aep.api.auth import TokenProvider
from aep_activator.aep.api.errors import AuthError, MalformedResponse, error_from_exception, error_from_response
from aep_activator.aep.api.observe import notify
from aep_activator.aep.api.transport import IDEMPOTENT, make_session, query, send

__all__ = ["AEPClient", "current_request_id", "make_session", "request_id", "tracing"]

M = TypeVar("M", bound=BaseModel)


class _Trace:
    """The ``x-request-id`` prefix of the calls made inside :func:`tracing`, and their count."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls = 0

    def next_id(self) -> str:
        self.calls += 1
        return f"{self.prefix}.{self.calls}"

    @property
    def last_id(self) -> str:
        """The id of the latest call sent in this block, or the prefix before the first."""
        return f"{self.prefix}.{self.calls}" if self.calls else self.prefix


_trace: ContextVar[_Trace | None] = ContextVar("aep_trace", default=None)


@contextmanager
def tracing(prefix: str) -> Iterator[None]:
    """Send ``x-request-id: {prefix}.{n}`` on the n-th call made inside this block (AEP documents the
    header as the caller's tracing id): logs, the simulator's journal and AEP support can tie each call
    to its run and step. Outside a block, each call gets a random id."""
    token = _trace.set(_Trace(prefix))
    try:
        yield
    finally:
        _trace.reset(token)


def request_id() -> str:
    trace = _trace.get()
    return trace.next_id() if trace is not None else uuid.uuid4().hex


def current_request_id() -> str | None:
    """The ``x-request-id`` of the latest call inside the current :func:`tracing` block (for logs)."""
    trace = _trace.get()
    return trace.last_id if trace is not None else None


MAX_BODY_BYTES = 8 * 1024 * 1024
"""Answers larger than this are refused as malformed rather than read into a worker's memory."""
USER_AGENT = "aep-activator"


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
        self._base_path = urllib3.util.parse_url(self.base_url).path or ""
        self._max_body = max_body_bytes
        # Imported here: the resources module imports this one for AEPClient's type.
        from aep_activator.aep.api.resources import Activations, ExportJobs, FlowRuns, Flows, SegmentJobs

        self.segment_jobs = SegmentJobs(self)
        self.export_jobs = ExportJobs(self)
        self.activations = Activations(self)
        self.flow_runs = FlowRuns(self)
        self.flows = Flows(self)

    def __repr__(self) -> str:
        return f"AEPClient({self.base_url!r}, org_id={self._org_id!r}, sandbox={self._sandbox!r})"

    @property
    def sandbox(self) -> str | None:
        return self._sandbox

    def with_options(self, *, sandbox: str | None) -> AEPClient:
        """This client with other per-call options (the ``x-sandbox-name`` it sends), sharing its token
        provider and connection pool: one IMS token serves every sandbox of the org."""
        return AEPClient(
            self.base_url, tokens=self._tokens, api_key=self._api_key, org_id=self._org_id, sandbox=sandbox,
            session=self._session, timeout=self._timeout, max_body_bytes=self._max_body,
        )  # fmt: skip

    def close(self) -> None:
        self._session.close()

    def _headers(self, token: str, extra: dict[str, str | None] | None, has_body: bool) -> dict[str, str]:
        headers: dict[str, str | None] = {
            "x-request-id": request_id(),
            "Authorization": f"Bearer {token}",
            "x-api-key": self._api_key,
            "x-gw-ims-org-id": self._org_id,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": USER_AGENT,
        }
        if self._sandbox:
            headers["x-sandbox-name"] = self._sandbox
        if has_body:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        return {k: v for k, v in headers.items() if v is not None}  # None removes a header, as in requests

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> requests.Response:
        """Send one request; return a 2xx answer with its body read, or raise an ``AEPError``."""
        url = self.base_url + path
        target = path + query(params, "&" if "?" in path else "?")  # relative to the base URL
        # Encoded here, before anything is sent: a body that is not JSON (NaN, a set) is the caller's bug.
        body = None if json is None else dumps(json, allow_nan=False).encode()
        idempotent = method.upper() in IDEMPOTENT
        for attempt in (1, 2):
            token = self._tokens.token()
            sent = self._headers(token, headers, body is not None)
            started = time.monotonic()
            try:
                resp = self._send(method, target, body, sent)
                self._read_body(resp)
            except requests.RequestException as exc:
                notify(method, path, "error", started, sent.get("x-request-id"))
                raise error_from_exception(exc, method=method, url=url, idempotent=idempotent) from None
            except MalformedResponse:
                notify(method, path, str(resp.status_code), started, sent.get("x-request-id"))
                raise
            notify(method, path, str(resp.status_code), started, sent.get("x-request-id"))
            if 200 <= resp.status_code < 300:
                return resp
            err = error_from_response(resp, idempotent=idempotent)
            if isinstance(err, AuthError) and resp.status_code == 401 and attempt == 1:
                self._tokens.invalidate(token)
                continue
            raise err
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> requests.Response:
        """One request for ``target`` (path and query, relative to the base URL) through the transport
        (aep/api/transport.py); the answer's body is not read yet."""
        return send(self._session, method, self.base_url + target, self._base_path + target, body=body,
                    headers=headers, timeout=self._timeout)  # fmt: skip

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

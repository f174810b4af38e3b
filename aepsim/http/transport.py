"""An in-process ``requests`` transport for the simulator, in the spirit of httpx's ``MockTransport``:
no server, no thread, no socket. Mount it on a session and the real client runs against the
framework-free dispatch::

    ctx = SimContext(SimulatorConfig(seed=1), ManualClock())
    session = requests.Session()
    session.mount("http://sim.local", SimulatorAdapter(ctx))
    session.get("http://sim.local/data/core/ups/segment/jobs", headers=...)

How it realises an ``Outcome`` (``aepsim.api.dispatch``):

- a reply becomes a ``requests.Response`` whose ``raw`` is a urllib3 ``HTTPResponse`` over the
  bytes, so ``stream=True`` and ``raw.stream()`` work as with a socket;
- ``drop`` raises ``requests.ConnectionError`` (connection aborted, nothing was done);
- ``hang`` raises ``requests.ReadTimeout`` *after* the action ran, at once: no real waiting;
- added latency is never slept: the admitted latency of every request is appended to
  ``SimulatorAdapter.latencies_s`` for a test to read, and otherwise ignored.

The request is dispatched synchronously on the caller's thread, so a ``ManualClock`` stands still
during a call and tests need no sleeps.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from http.client import RemoteDisconnected, responses
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import urllib3
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from aep_activator.aepsim.api import Dispatcher, Headers, Request, SimContext, make_dispatcher


class SimulatorAdapter(BaseAdapter):
    """A ``requests`` adapter answering from a ``SimContext`` in-process."""

    def __init__(self, ctx: SimContext, dispatcher: Dispatcher | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.dispatcher = dispatcher or make_dispatcher(ctx)
        self.latencies_s: list[float] = []
        """The added latency drawn for each request, in order; recorded, never slept."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        sim_request = Request(
            method=(request.method or "GET").upper(),
            path=url.path or "/",
            query=parse_qs(url.query, keep_blank_values=True),
            headers=Headers(dict(request.headers)),
            body=_body_bytes(request.body),
            base_url=f"{url.scheme}://{url.netloc}",
        )
        admission = self.dispatcher.admit(sim_request)
        self.latencies_s.append(admission.latency_s)
        outcome = self.dispatcher.run(admission)
        if outcome.kind == "drop":
            reason = RemoteDisconnected("Remote end closed connection without response")
            raise requests.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", reason), request=request
            )
        if outcome.kind == "hang" or outcome.reply is None:
            raise requests.ReadTimeout(
                f"simulator: the request was accepted but never answered (read timeout={timeout})", request=request
            )
        reply = outcome.reply
        headers = reply.all_headers()
        content = reply.content()
        headers.setdefault("Content-Length", str(len(content)))
        reason_text = responses.get(reply.status, "")
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(content),
            headers=headers,
            status=reply.status,
            reason=reason_text,
            preload_content=False,
            decode_content=False,
            request_method=sim_request.method,
        )
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = reason_text
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        return None


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        data = body.read()
        return data if isinstance(data, bytes) else str(data).encode()
    return b"".join(chunk if isinstance(chunk, bytes) else str(chunk).encode() for chunk in body)

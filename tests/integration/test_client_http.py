"""aep/client.py over real HTTP: a local stub records every request and answers from a script.

What matters most here is what reaches the wire: the headers AEP requires, the exact bodies, and
above all that a POST is sent exactly once whatever happens to its answer (a duplicate POST burns a
scarce daily quota), while GETs are retried by the transport.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from aep_activator.aep.api.client import AEPClient, make_session
from aep_activator.aep.api.errors import (
    AuthError,
    Conflict,
    MalformedResponse,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    ValidationFailed,
)
from aep_activator.aep.api.models import (
    ADHOC_V2_ACCEPT,
    ExportJobCreate,
    ExportJobStatus,
    FlowRunStatus,
    SegmentJobStatus,
)
from aep_activator.aep.api.paths import ADHOC_RUN, EXPORT_JOBS, FLOW_RUNS, SEGMENT_JOBS

pytestmark = pytest.mark.integration

API_KEY = "api-key-123"
ORG = "5555467B5D8013E50A494220@AdobeOrg"

SEGMENT_JOB = {"id": "job-1", "status": "NEW", "segments": [{"segmentId": "seg-1"}]}
EXPORT_JOB = {"id": 11037, "status": "SUCCEEDED", "schema": {"name": "_xdm.context.profile"}}
ADHOC_ANSWER = {
    "order": [
        {
            "segment": "seg-1",
            "order": "dest-1",
            "statusURL": "https://platform.adobe.io/data/foundation/flowservice/runs/88d6da63-dc97-460e-b781-fc795a7386d9",
        }
    ]
}
FLOW_RUN = {"items": [{"id": "run-1", "metrics": {"statusSummary": {"status": "Success"}}}]}


# ------------------------------------------------------------------------------------------------
# The stub


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line (a read timeout for the client)
    action: Callable[[BaseHTTPRequestHandler], None] | None = None  # full control of the answer


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class APIStub:
    """Answers each (method, path) with its scripted replies in order; the last one repeats."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: dict[tuple[str, str], list[Reply]] = {}
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.requests.append(
                        Seen(
                            self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body
                        )
                    )
                    replies = stub.script.get((self.command, parts.path)) or [
                        Reply(404, {"message": "no route"})
                    ]
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                time.sleep(reply.delay_s)
                if reply.action is not None:
                    reply.action(self)
                    return
                if isinstance(reply.body, dict | list):
                    payload = json.dumps(reply.body).encode()
                    ctype = "application/json"
                elif isinstance(reply.body, str):
                    payload, ctype = reply.body.encode(), "text/html"
                else:
                    payload, ctype = reply.body or b"", "application/json"
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.pop("Content-Type", ctype))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.script[(method, path)] = list(replies)

    def sent(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CountingTokens:
    """A token provider fake: a new token after each invalidation, and a record of invalidations."""

    def __init__(self) -> None:
        self.generation = 1
        self.invalidated: list[str] = []
        self.handed_out = 0

    def token(self) -> str:
        self.handed_out += 1
        return f"tok-{self.generation}"

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if token == f"tok-{self.generation}":
            self.generation += 1


@pytest.fixture
def stub() -> Iterator[APIStub]:
    s = APIStub()
    yield s
    s.close()


@pytest.fixture
def tokens() -> CountingTokens:
    return CountingTokens()


class _ThroughSession(HTTPAdapter):
    """Any adapter but requests' own makes the transport send through ``Session.request``."""


def session_for(path: str) -> requests.Session:
    """A ``make_session()`` session whose calls take ``path``: "pool" (urllib3's pool directly, the
    default; ``Session.request`` then fails the test) or "session" (requests' whole machinery)."""
    session = make_session()
    if path == "pool":

        def not_this_way(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the call went through Session.request, not the adapter's pool")

        session.request = not_this_way  # type: ignore[method-assign]
    else:
        adapter = _ThroughSession(max_retries=session.get_adapter("http://x").max_retries)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


@pytest.fixture(params=["pool", "session"])
def transport_path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(
    stub: APIStub, tokens: CountingTokens, transport_path: str
) -> Iterator[Callable[..., AEPClient]]:
    clients: list[AEPClient] = []

    def make(**kw: Any) -> AEPClient:
        args: dict[str, Any] = {
            "tokens": tokens,
            "api_key": API_KEY,
            "org_id": ORG,
            "sandbox": "prod",
            "session": session_for(transport_path),
            "timeout": (2.0, 2.0),
        }
        args.update(kw)
        client = AEPClient(kw.pop("base_url", stub.url), **{k: v for k, v in args.items() if k != "base_url"})
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., AEPClient]) -> AEPClient:
    return make_client()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# Headers


def test_every_request_carries_the_bearer_token_api_key_org_and_sandbox(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/job-1", Reply(body=SEGMENT_JOB))
    stub.on("POST", SEGMENT_JOBS, Reply(body=SEGMENT_JOB))
    stub.on("DELETE", f"{SEGMENT_JOBS}/job-1", Reply(204))
    client.segment_jobs.get("job-1")
    client.segment_jobs.create(["seg-1"])
    client.segment_jobs.cancel("job-1")
    assert [r.method for r in stub.requests] == ["GET", "POST", "DELETE"]
    for r in stub.requests:
        assert r.headers["Authorization"] == "Bearer tok-1"
        assert r.headers["x-api-key"] == API_KEY
        assert r.headers["x-gw-ims-org-id"] == ORG
        assert r.headers["x-sandbox-name"] == "prod"


def test_content_type_json_is_sent_only_with_a_body(stub: APIStub, client: AEPClient) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/job-1", Reply(body=SEGMENT_JOB))
    stub.on("POST", SEGMENT_JOBS, Reply(body=SEGMENT_JOB))
    stub.on("DELETE", f"{SEGMENT_JOBS}/job-1", Reply(204))
    client.segment_jobs.get("job-1")
    client.segment_jobs.create(["seg-1"])
    client.segment_jobs.cancel("job-1")
    get, post, delete = stub.requests
    assert "Content-Type" not in get.headers
    assert "Content-Type" not in delete.headers
    assert post.headers["Content-Type"] == "application/json"


def test_no_sandbox_header_is_sent_when_no_sandbox_is_set(
    stub: APIStub, make_client: Callable[..., AEPClient]
) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/job-1", Reply(body=SEGMENT_JOB))
    make_client(sandbox=None).segment_jobs.get("job-1")
    (r,) = stub.requests
    assert "x-sandbox-name" not in {k.lower() for k in r.headers}
    assert r.headers["x-api-key"] == API_KEY


# ------------------------------------------------------------------------------------------------
# Bodies and parameters


def test_a_segment_job_is_created_with_the_json_array_body(stub: APIStub, client: AEPClient) -> None:
    stub.on("POST", SEGMENT_JOBS, Reply(body=SEGMENT_JOB))
    job = client.segment_jobs.create(["seg-1", "seg-2"])
    (r,) = stub.requests
    assert r.json() == [{"segmentId": "seg-1"}, {"segmentId": "seg-2"}]
    assert job.id == "job-1"
    assert job.status is SegmentJobStatus.NEW


def test_an_export_job_is_created_with_the_wire_body(stub: APIStub, client: AEPClient) -> None:
    stub.on("POST", EXPORT_JOBS, Reply(body=EXPORT_JOB))
    spec = ExportJobCreate.model_validate(
        {"destination": {"datasetId": "ds-1"}, "schema": {"name": "_xdm.context.profile"}}
    )
    job = client.export_jobs.create(spec)
    assert stub.requests[0].json() == spec.wire()
    assert job.id == "11037"
    assert job.status is ExportJobStatus.SUCCEEDED


def test_v2_activation_sends_the_version_accept_header_and_no_export_ids(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on("POST", ADHOC_RUN, Reply(body=ADHOC_ANSWER))
    answer = client.activations.run({"dest-1": ["seg-1", "seg-2"]}, version=2)
    (r,) = stub.requests
    assert r.headers["Accept"] == ADHOC_V2_ACCEPT
    assert r.json() == {"activationInfo": {"dest-1": ["seg-1", "seg-2"]}}
    assert answer.order[0].run_id == "88d6da63-dc97-460e-b781-fc795a7386d9"


def test_v1_activation_sends_export_ids_without_the_version_header(stub: APIStub, client: AEPClient) -> None:
    stub.on("POST", ADHOC_RUN, Reply(body=ADHOC_ANSWER))
    client.activations.run({"dest-1": ["seg-1"]}, export_ids=["11037"])
    (r,) = stub.requests
    assert r.json() == {"activationInfo": {"dest-1": ["seg-1"]}, "exportIds": ["11037"]}
    # The ad-hoc spec: v1 sends no Accept header at all ("Without this header, v1 behavior applies").
    assert "Accept" not in r.headers


def test_both_transport_paths_put_the_same_request_on_the_wire(stub: APIStub, tokens: CountingTokens) -> None:
    stub.on("POST", SEGMENT_JOBS, Reply(body=SEGMENT_JOB))
    stub.on("GET", SEGMENT_JOBS, Reply(body={"_page": {"totalCount": 0, "pageSize": 0}, "children": []}))
    for path in ("pool", "session"):
        client = AEPClient(stub.url, tokens=tokens, api_key=API_KEY, org_id=ORG, sandbox="prod",
                           session=session_for(path))  # fmt: skip
        client.segment_jobs.create(["seg-1"])
        client.segment_jobs.list(status=SegmentJobStatus.PROCESSING, limit=5, segment_id="seg-1")
        client.close()
    pool, session = stub.requests[:2], stub.requests[2:]

    def wire(r: Seen) -> tuple[Any, ...]:
        headers = {k: v for k, v in r.headers.items() if k not in ("x-request-id", "Host")}
        return r.method, r.path, r.query, sorted(headers.items()), r.body

    assert [wire(r) for r in pool] == [wire(r) for r in session]
    assert [sorted(r.headers) for r in pool] == [sorted(r.headers) for r in session]


def test_a_certificate_no_trusted_authority_signed_is_refused_on_both_paths(
    tmp_path: Path, tokens: CountingTokens, transport_path: str
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)  # fmt: skip
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *args: None  # type: ignore[method-assign]  # the refused handshake
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = AEPClient(f"https://127.0.0.1:{server.server_address[1]}", tokens=tokens, api_key=API_KEY, org_id=ORG,
                       session=session_for(transport_path), timeout=(2.0, 2.0))  # fmt: skip
    try:
        with pytest.raises(TransientError, match="SSLError"):
            client.segment_jobs.get("job-1")
        with pytest.raises(TransientError) as info:
            client.segment_jobs.create(["seg-1"])
        # not OutcomeUnknown: the handshake failed before a byte of the POST left, so its slot is refunded
        assert type(info.value) is TransientError and "could not connect" in str(info.value)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
    assert served == [], "no request went out over a connection whose certificate was not verified"


def test_invalid_activation_requests_are_refused_before_anything_is_sent(
    stub: APIStub, client: AEPClient
) -> None:
    with pytest.raises(ValueError, match="v2 takes no export ids"):
        client.activations.run({"d": ["a"]}, export_ids=["1"], version=2)
    with pytest.raises(ValueError, match="version must be 1 or 2"):
        client.activations.run({"d": ["a"]}, version=3)
    with pytest.raises(ValueError, match="81 audiences"):
        client.activations.run({"d": [f"a{i}" for i in range(81)]}, version=2)
    with pytest.raises(ValueError, match="exportIds"):
        client.activations.run({"d": ["a"]}, version=1)
    with pytest.raises(ValueError, match="segment ids must be unique"):
        client.segment_jobs.create(["a", "a"])
    with pytest.raises(ValueError, match="non-empty"):
        client.segment_jobs.get("  ")
    assert stub.requests == []


def test_segment_job_list_sends_status_limit_start_sort_and_property(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on(
        "GET",
        SEGMENT_JOBS,
        Reply(
            body={
                "_page": {"totalCount": 1, "pageSize": 1},
                "children": [SEGMENT_JOB],
                "_links": {"next": {}},
            }
        ),
    )
    page = client.segment_jobs.list(
        status=SegmentJobStatus.PROCESSING, limit=20, start=3, sort="creationTime:asc", segment_id="seg-1"
    )
    (r,) = stub.requests
    assert r.query == {
        "status": ["PROCESSING"],
        "limit": ["20"],
        "start": ["3"],
        "sort": ["creationTime:asc"],
        "property": ["segments~segmentId==seg-1"],
    }
    assert [j.id for j in page.children] == ["job-1"]
    client.segment_jobs.list()
    assert stub.requests[1].query == {"limit": ["100"], "sort": ["creationTime:desc"]}


def test_export_jobs_iterate_page_by_page_following_the_offset_of_link_next(
    stub: APIStub, client: AEPClient
) -> None:
    def job(i: int) -> dict[str, Any]:
        return {"id": i, "status": "SUCCEEDED"}

    stub.on(
        "GET",
        EXPORT_JOBS,
        Reply(
            body={
                "records": [job(3), job(2)],
                "link": {"next": "/export/jobs/?limit=2&offset=1538573416687_2"},
            }
        ),
        Reply(body={"records": [job(1)], "link": {"next": ""}}),
        Reply(500, b"must not be asked for a third page"),
    )
    assert [j.id for j in client.export_jobs.iter(page_size=2)] == ["3", "2", "1"]
    first, second = stub.requests
    assert first.query == {"limit": ["2"]}
    assert second.query == {"limit": ["2"], "offset": ["1538573416687_2"]}


def test_export_job_iteration_stops_after_max_pages(stub: APIStub, client: AEPClient) -> None:
    stub.on(
        "GET",
        EXPORT_JOBS,
        Reply(body={"records": [{"id": 1, "status": "NEW"}], "link": {"next": "/export/jobs/?offset=x_1"}}),
    )
    assert len(list(client.export_jobs.iter(page_size=1, max_pages=3))) == 3
    assert len(stub.requests) == 3


def test_export_job_list_sends_status_and_offset(stub: APIStub, client: AEPClient) -> None:
    stub.on("GET", EXPORT_JOBS, Reply(body={"records": []}))
    client.export_jobs.list(limit=5, offset="1_2", status=ExportJobStatus.FAILED)
    assert stub.requests[0].query == {"limit": ["5"], "offset": ["1_2"], "status": ["FAILED"]}


def test_ids_are_url_quoted_into_the_path(stub: APIStub, client: AEPClient) -> None:
    odd = "a/b c?d#e%"
    quoted = "a%2Fb%20c%3Fd%23e%25"
    stub.on("GET", f"{SEGMENT_JOBS}/{quoted}", Reply(body=SEGMENT_JOB))
    stub.on("GET", f"{EXPORT_JOBS}/{quoted}", Reply(body=EXPORT_JOB))
    stub.on("GET", f"{FLOW_RUNS}/run%201%25", Reply(body=FLOW_RUN))
    client.segment_jobs.get(odd)
    client.export_jobs.get(odd)
    client.flow_runs.get("run 1%")
    assert [r.path for r in stub.requests] == [
        f"{SEGMENT_JOBS}/{quoted}",
        f"{EXPORT_JOBS}/{quoted}",
        f"{FLOW_RUNS}/run%201%25",
    ]


def test_cancel_reads_a_body_or_accepts_an_empty_204(stub: APIStub, client: AEPClient) -> None:
    stub.on("DELETE", f"{SEGMENT_JOBS}/j1", Reply(204))
    stub.on(
        "DELETE", f"{EXPORT_JOBS}/11037", Reply(200, {"status": True, "message": "marked for cancelling"})
    )
    assert client.segment_jobs.cancel("j1") is None
    answer = client.export_jobs.cancel("11037")
    assert answer is not None
    assert answer.status is True


# ------------------------------------------------------------------------------------------------
# 401: one refresh, one re-send


def test_a_401_invalidates_the_token_once_and_resends_once(
    stub: APIStub, client: AEPClient, tokens: CountingTokens
) -> None:
    stub.on(
        "POST",
        ADHOC_RUN,
        Reply(401, {"error_code": "401013", "message": "Oauth token is not valid"}),
        Reply(body=ADHOC_ANSWER),
    )
    client.activations.run({"dest-1": ["seg-1"]}, version=2)
    assert tokens.invalidated == ["tok-1"]
    first, second = stub.requests
    assert first.headers["Authorization"] == "Bearer tok-1"
    assert second.headers["Authorization"] == "Bearer tok-2"
    assert first.body == second.body


def test_a_second_401_is_an_auth_error_after_exactly_two_sends(
    stub: APIStub, client: AEPClient, tokens: CountingTokens
) -> None:
    stub.on(
        "GET",
        f"{SEGMENT_JOBS}/j1",
        Reply(401, {"error_code": "401013", "message": "Oauth token is not valid"}),
    )
    with pytest.raises(AuthError, match="Oauth token is not valid"):
        client.segment_jobs.get("j1")
    assert len(stub.requests) == 2
    assert tokens.invalidated == ["tok-1"]


def test_a_403_is_not_retried_with_a_new_token(
    stub: APIStub, client: AEPClient, tokens: CountingTokens
) -> None:
    stub.on("POST", SEGMENT_JOBS, Reply(403, {"error_code": "403027", "message": "User region is missing"}))
    with pytest.raises(AuthError):
        client.segment_jobs.create(["seg-1"])
    assert len(stub.requests) == 1
    assert tokens.invalidated == []


# ------------------------------------------------------------------------------------------------
# POST is sent exactly once; GET is retried by the transport


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_post_answered_with_a_5xx_is_sent_exactly_once_and_its_outcome_is_unknown(
    stub: APIStub, client: AEPClient, status: int
) -> None:
    stub.on("POST", SEGMENT_JOBS, Reply(status, b"upstream trouble"), Reply(body=SEGMENT_JOB))
    with pytest.raises(OutcomeUnknown) as info:
        client.segment_jobs.create(["seg-1"])
    assert len(stub.sent("POST")) == 1
    assert info.value.status == status
    assert info.value.method == "POST"


def test_a_post_whose_answer_times_out_is_sent_exactly_once_and_its_outcome_is_unknown(
    stub: APIStub, make_client: Callable[..., AEPClient]
) -> None:
    stub.on("POST", ADHOC_RUN, Reply(delay_s=0.6, body=ADHOC_ANSWER))
    client = make_client(timeout=(2.0, 0.2))
    with pytest.raises(OutcomeUnknown, match="ReadTimeout"):
        client.activations.run({"dest-1": ["seg-1"]}, version=2)
    time.sleep(0.5)  # give any (wrong) re-send the time to arrive
    assert len(stub.sent("POST", ADHOC_RUN)) == 1


def _headers_then_stall(handler: BaseHTTPRequestHandler) -> None:
    body = json.dumps(ADHOC_ANSWER).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[:10])
    handler.wfile.flush()
    time.sleep(0.6)


def test_a_post_whose_answer_stalls_mid_body_is_sent_once_and_its_outcome_is_unknown(
    stub: APIStub, make_client: Callable[..., AEPClient]
) -> None:
    # The status line says 200 but the body never completes: AEP probably created the run.
    stub.on("POST", ADHOC_RUN, Reply(action=_headers_then_stall))
    client = make_client(timeout=(2.0, 0.2))
    with pytest.raises(OutcomeUnknown):
        client.activations.run({"dest-1": ["seg-1"]}, version=2)
    assert len(stub.sent("POST", ADHOC_RUN)) == 1


def _headers_then_hang_up(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"order": [')
    handler.wfile.flush()
    handler.close_connection = True


def test_a_post_whose_answer_is_cut_off_is_sent_once_and_its_outcome_is_unknown(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on("POST", SEGMENT_JOBS, Reply(action=_headers_then_hang_up))
    with pytest.raises(OutcomeUnknown):
        client.segment_jobs.create(["seg-1"])
    assert len(stub.sent("POST")) == 1


def test_a_get_answered_with_a_503_is_retried_by_the_transport_and_succeeds(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/j1", Reply(503, b"busy"), Reply(body=SEGMENT_JOB))
    assert client.segment_jobs.get("j1").id == "job-1"
    assert len(stub.sent("GET")) == 2


def test_a_get_that_keeps_failing_is_transient_after_the_transport_retries(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/j1", Reply(503, b"busy"))
    with pytest.raises(TransientError) as info:
        client.segment_jobs.get("j1")
    assert not isinstance(info.value, OutcomeUnknown)
    assert len(stub.sent("GET")) == 3  # the first try and make_session's two retries


def test_a_get_whose_answer_times_out_is_retried_by_the_transport(
    stub: APIStub, make_client: Callable[..., AEPClient]
) -> None:
    stub.on("GET", f"{FLOW_RUNS}/run-1", Reply(delay_s=0.5, body=FLOW_RUN), Reply(body=FLOW_RUN))
    client = make_client(timeout=(2.0, 0.2))
    assert client.flow_runs.get("run-1").status is FlowRunStatus.SUCCESS
    assert len(stub.sent("GET")) == 2


def test_a_429_on_a_post_is_rate_limited_with_retry_after_and_sent_once(
    stub: APIStub, client: AEPClient
) -> None:
    stub.on(
        "POST",
        SEGMENT_JOBS,
        Reply(429, {"error_code": "429050", "message": "Too many requests"}, headers={"Retry-After": "38"}),
    )
    with pytest.raises(RateLimited) as info:
        client.segment_jobs.create(["seg-1"])
    assert info.value.retry_after_s == 38.0
    assert len(stub.requests) == 1


def test_a_refused_connection_on_a_post_is_transient(tokens: CountingTokens, transport_path: str) -> None:
    client = AEPClient(
        f"http://127.0.0.1:{_closed_port()}", tokens=tokens, api_key=API_KEY, org_id=ORG, timeout=(1.0, 1.0),
        session=session_for(transport_path),
    )
    try:
        with pytest.raises(TransientError) as info:
            client.segment_jobs.create(["seg-1"])
    finally:
        client.close()
    assert type(info.value) is TransientError  # not OutcomeUnknown: nothing reached AEP
    assert info.value.method == "POST"


def test_aep_error_answers_map_to_the_tree(stub: APIStub, client: AEPClient) -> None:
    msg = "Run already going on for audience seg-1 for order dest-1 with run id run-9"
    stub.on(
        "POST",
        ADHOC_RUN,
        Reply(400, {"message": msg}),
        Reply(400, {"message": "Segments x are not part of this dataflow"}),
    )
    stub.on("GET", f"{SEGMENT_JOBS}/missing", Reply(404, b""))
    with pytest.raises(Conflict) as info:
        client.activations.run({"dest-1": ["seg-1"]}, version=2)
    assert (info.value.segment_id, info.value.order_id, info.value.flow_run_id) == (
        "seg-1",
        "dest-1",
        "run-9",
    )
    with pytest.raises(ValidationFailed, match="not part of this dataflow"):
        client.activations.run({"dest-1": ["seg-1"]}, version=2)
    with pytest.raises(NotFound):
        client.segment_jobs.get("missing")


# ------------------------------------------------------------------------------------------------
# Malformed answers


def test_an_html_200_is_a_malformed_response(stub: APIStub, client: AEPClient) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/j1", Reply(200, "<html><body>Maintenance</body></html>"))
    with pytest.raises(MalformedResponse, match="unexpected SegmentJob answer"):
        client.segment_jobs.get("j1")


def test_an_unknown_status_value_is_a_malformed_response(stub: APIStub, client: AEPClient) -> None:
    stub.on("GET", f"{SEGMENT_JOBS}/j1", Reply(body={**SEGMENT_JOB, "status": "PAUSED"}))
    with pytest.raises(MalformedResponse, match="status"):
        client.segment_jobs.get("j1")
    stub.on(
        "GET",
        f"{FLOW_RUNS}/r1",
        Reply(body={"items": [{"id": "r1", "metrics": {"statusSummary": {"status": "Exploded"}}}]}),
    )
    with pytest.raises(MalformedResponse, match="status"):
        client.flow_runs.get("r1")


def test_a_flow_run_answer_without_items_is_malformed(stub: APIStub, client: AEPClient) -> None:
    stub.on("GET", f"{FLOW_RUNS}/r1", Reply(body={"items": []}))
    with pytest.raises(MalformedResponse, match="no items"):
        client.flow_runs.get("r1")


def test_a_body_over_max_body_bytes_is_malformed_and_not_read_to_the_end(
    stub: APIStub, make_client: Callable[..., AEPClient]
) -> None:
    total = 256 * 1024 * 1024
    written = [0]
    done = threading.Event()

    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        chunk = b" " * 65536
        try:
            while written[0] < total:
                handler.wfile.write(chunk)
                written[0] += len(chunk)
        except OSError:
            pass
        finally:
            done.set()

    stub.on("GET", f"{SEGMENT_JOBS}/big", Reply(action=huge))
    client = make_client(max_body_bytes=1024)
    started = time.monotonic()
    with pytest.raises(MalformedResponse, match="larger than 1024 bytes"):
        client.segment_jobs.get("big")
    assert done.wait(10)
    assert written[0] < total // 4, "the client read (nearly) the whole body"
    assert time.monotonic() - started < 5


def test_a_body_at_exactly_max_body_bytes_is_read(
    stub: APIStub, make_client: Callable[..., AEPClient]
) -> None:
    body = json.dumps(SEGMENT_JOB).encode()
    stub.on("GET", f"{SEGMENT_JOBS}/j1", Reply(body=body))
    assert make_client(max_body_bytes=len(body)).segment_jobs.get("j1").id == "job-1"


# ------------------------------------------------------------------------------------------------
# statusURL never sends the token elsewhere


def test_a_status_url_on_another_host_is_fetched_from_our_base_url(
    stub: APIStub, client: AEPClient, tokens: CountingTokens
) -> None:
    elsewhere = APIStub()
    try:
        elsewhere.on("GET", f"{FLOW_RUNS}/run-1", Reply(body=FLOW_RUN))
        stub.on("GET", f"{FLOW_RUNS}/run-1", Reply(body=FLOW_RUN))
        run = client.flow_runs.get(f"{elsewhere.url}{FLOW_RUNS}/run-1?x=1")
        run2 = client.flow_runs.get(f"https://evil.example{FLOW_RUNS}/run-1/")
    finally:
        elsewhere.close()
    assert run.id == run2.id == "run-1"
    assert elsewhere.requests == []
    assert [r.path for r in stub.requests] == [f"{FLOW_RUNS}/run-1", f"{FLOW_RUNS}/run-1"]
    assert all(r.query == {} for r in stub.requests)
    assert stub.requests[0].headers["Authorization"] == "Bearer tok-1"


def test_a_flow_run_can_be_fetched_by_bare_id(stub: APIStub, client: AEPClient) -> None:
    stub.on("GET", f"{FLOW_RUNS}/run-1", Reply(body=FLOW_RUN))
    assert client.flow_runs.get("run-1").status is FlowRunStatus.SUCCESS
    stub.on("GET", FLOW_RUNS, Reply(body=FLOW_RUN))
    assert client.flow_runs.list(flow_id="flow-1", limit=10).items[0].id == "run-1"
    # Newest first by creation (the spec's `orderby`), so a look reaches back to a given time and stops.
    assert stub.requests[-1].query == {"property": ["flowId==flow-1"], "limit": ["10"], "orderby": ["-createdAt"]}


def test_the_client_repr_shows_no_token_or_api_key(client: AEPClient) -> None:
    text = repr(client)
    assert "tok-" not in text
    assert API_KEY not in text
    assert ORG in text

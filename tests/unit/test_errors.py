"""aep/errors.py: HTTP answers and transport failures map to one tree, and every error pickles.

Responses are real ``requests.Response`` objects with a prepared request, as the client produces them.
"""

from __future__ import annotations

import json
import pickle
import socket
from typing import Any

import pytest
import requests

from aep_activator.aep.api.errors import (
    MAX_ERROR_TEXT,
    AEPError,
    AuthError,
    Conflict,
    JobFailed,
    MalformedResponse,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
    ValidationFailed,
    error_from_exception,
    error_from_response,
    parse_retry_after,
    refunds_quota,
)

FLOW_404 = (
    "The requested flows resource 84224def-1e2a-4d95-9ea2-132d697ed2aa is not found. "
    "Verify the resource ID before trying again."
)
URL = "https://platform.adobe.io/data/core/activation/disflowprovider/adhocrun"


def response(
    status: int,
    body: bytes | str | dict[str, Any] | None = None,
    *,
    method: str = "POST",
    url: str = URL,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.reason = reason or ""
    if isinstance(body, dict):
        resp._content = json.dumps(body).encode()
        resp.headers["Content-Type"] = "application/json"
    elif isinstance(body, str):
        resp._content = body.encode()
    else:
        resp._content = body or b""
    resp.headers.update(headers or {})
    resp.url = url
    resp.request = requests.Request(method, url).prepare()
    resp.encoding = "utf-8"
    return resp


# ------------------------------------------------------------------------------------------------
# error_from_response


def test_a_generic_400_is_a_validation_failure_with_the_aep_message() -> None:
    msg = "Segments audience-x are not part of this dataflow or out of schedule range!"
    err = error_from_response(
        response(400, {"message": msg}, headers={"x-request-id": "rid-1"}), idempotent=False
    )
    assert type(err) is ValidationFailed
    assert isinstance(err, PermanentError)
    assert msg in str(err)
    assert (err.status, err.request_id, err.method, err.url) == (400, "rid-1", "POST", URL)
    assert str(err) == f"request rejected: {msg} (HTTP 400) [POST {URL}] request-id=rid-1"


def test_run_already_going_on_is_a_conflict_carrying_the_three_ids() -> None:
    msg = (
        "Run already going on for audience 7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c for order "
        "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb with run id 88d6da63-dc97-460e-b781-fc795a7386d9"
    )
    err = error_from_response(response(400, {"message": msg}), idempotent=False)
    assert type(err) is Conflict
    assert isinstance(err, PermanentError)
    assert err.segment_id == "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
    assert err.order_id == "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
    assert err.flow_run_id == "88d6da63-dc97-460e-b781-fc795a7386d9"
    assert err.status == 400


def test_a_conflict_message_ending_in_punctuation_keeps_a_clean_run_id() -> None:
    err = error_from_response(
        response(400, {"message": "Run already going on for audience s1 for order o1 with run id r1."}),
        idempotent=False,
    )
    assert isinstance(err, Conflict)
    assert err.flow_run_id == "r1"


def test_the_same_sentence_on_a_non_400_is_not_a_conflict() -> None:
    msg = "Run already going on for audience s1 for order o1 with run id r1"
    assert type(error_from_response(response(500, {"message": msg}), idempotent=True)) is TransientError


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors(status: int) -> None:
    err = error_from_response(
        response(status, {"error_code": "401013", "message": "Oauth token is not valid"}), idempotent=True
    )
    assert type(err) is AuthError
    assert "Oauth token is not valid (error_code 401013)" in str(err)


def test_404_is_not_found() -> None:
    err = error_from_response(response(404, b"", method="GET", reason="Not Found"), idempotent=True)
    assert type(err) is NotFound
    assert "Not Found" in str(err)


def test_a_429_with_retry_after_seconds_is_rate_limited_for_that_long() -> None:
    # API §7.3: the Adobe gateway's throttle answer.
    resp = response(
        429,
        {"error_code": "429050", "message": "Too many requests"},
        headers={"Retry-After": "38", "Server": "APIP", "X-Request-Id": "iEUtsLiFgj3R4xsbirAyZlMyaxRTo8Xo"},
    )
    err = error_from_response(resp, idempotent=False)
    assert type(err) is RateLimited
    assert isinstance(err, TransientError)
    assert err.retry_after_s == 38.0
    assert err.request_id == "iEUtsLiFgj3R4xsbirAyZlMyaxRTo8Xo"
    assert "Too many requests (error_code 429050)" in str(err)


@pytest.mark.parametrize("value", ["soon", "Wed, 21 Oct 2015 07:28:00 GMT", "", "-5", "nan", "inf", "1e12"])
def test_a_429_with_an_unusable_retry_after_leaves_the_wait_to_the_caller(value: str) -> None:
    err = error_from_response(response(429, b"", headers={"Retry-After": value}), idempotent=True)
    assert isinstance(err, RateLimited)
    assert err.retry_after_s is None


def test_a_429_without_retry_after_has_no_wait() -> None:
    err = error_from_response(response(429, b""), idempotent=True)
    assert isinstance(err, RateLimited)
    assert err.retry_after_s is None


@pytest.mark.parametrize(
    ("value", "seconds"), [("0", 0.0), (" 38 ", 38.0), ("1.5", 1.5), ("172800", 172800.0)]
)
def test_retry_after_in_seconds_is_parsed(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_a_get_is_transient_but_on_a_post_the_outcome_is_unknown(status: int) -> None:
    get = error_from_response(response(status, b"oops", method="GET"), idempotent=True)
    post = error_from_response(response(status, b"oops", method="POST"), idempotent=False)
    assert type(get) is TransientError
    assert type(post) is OutcomeUnknown
    assert post.method == "POST"
    assert post.status == status


@pytest.mark.parametrize("status", [408, 425])
def test_request_timeout_answers_are_transient_for_get_and_unknown_for_post(status: int) -> None:
    assert type(error_from_response(response(status, b"", method="GET"), idempotent=True)) is TransientError
    assert type(error_from_response(response(status, b""), idempotent=False)) is OutcomeUnknown


def test_an_html_error_page_becomes_a_short_one_line_message() -> None:
    html = (
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>Bad   Gateway</h1>\n</body></html>"
    )
    err = error_from_response(
        response(502, html, method="GET", headers={"Content-Type": "text/html"}), idempotent=True
    )
    assert type(err) is TransientError
    assert "\n" not in err.message
    assert "<title>502 Bad Gateway</title>" in err.message
    assert "Bad Gateway</h1>" in err.message


def test_a_huge_error_body_is_truncated_in_the_message() -> None:
    body = "x" * 5_000_000
    err = error_from_response(response(400, body), idempotent=False)
    assert len(err.message) <= MAX_ERROR_TEXT + 50
    huge_json = {"message": "m" * 100_000}
    err = error_from_response(response(400, huge_json), idempotent=False)
    assert len(err.message) <= MAX_ERROR_TEXT + 50


@pytest.mark.parametrize(
    ("status", "body", "kind", "text"),
    [
        # API §7.1, S-TROUBLE-MD gateway and header errors
        (
            403,
            {"error_code": "403010", "message": "Oauth token is missing."},
            AuthError,
            "Oauth token is missing.",
        ),
        (
            401,
            {"error_code": "401013", "message": "Oauth token is not valid"},
            AuthError,
            "Oauth token is not valid",
        ),
        (403, {"error_code": "403000", "message": "Api Key is required"}, AuthError, "Api Key is required"),
        (403, {"error_code": "403003", "message": "Api Key is invalid"}, AuthError, "Api Key is invalid"),
        (400, {"error_code": "400003", "message": "Missing header"}, ValidationFailed, "Missing header"),
        (403, {"error_code": "403025", "message": "Profile is not valid"}, AuthError, "Profile is not valid"),
        (
            403,
            {"error_code": "403027", "message": "User region is missing"},
            AuthError,
            "User region is missing",
        ),
        (
            400,
            {
                "type": "/placeholder/type/uri",
                "status": 400,
                "title": "BadRequestError",
                "detail": "A valid content-type must be specified",
            },
            ValidationFailed,
            "A valid content-type must be specified",
        ),
        # S-DEST-YAML pairs the 401 with a numeric error_code.
        (401, {"error_code": 401013, "message": "Oauth token is not valid"}, AuthError, "error_code 401013"),
        # API §7.2, Flow Service problem-details 404
        (
            404,
            {
                "type": "https://ns.adobe.com/aep/errors/FLOW-1439-404",
                "title": "Resource not found",
                "status": 404,
                "report": {
                    "detailed-message": FLOW_404,
                    "id": "84224def-1e2a-4d95-9ea2-132d697ed2aa",
                    "request-id": "{REQUEST_ID}",
                    "type": "flows",
                },
                "errorMessage": FLOW_404,
                "errorDetails": FLOW_404,
            },
            NotFound,
            "The requested flows resource 84224def-1e2a-4d95-9ea2-132d697ed2aa is not found",
        ),
        # the etag mismatch body (HTTP status undocumented; a 412 is a rejected request)
        (
            412,
            {"errorMessage": "Supplied version=[1] does not match the current version on entity=[2]"},
            ValidationFailed,
            "does not match the current version",
        ),
        # OAuth-style body
        (401, {"error": "invalid_client", "error_description": "bad"}, AuthError, "bad"),
    ],
)
def test_the_documented_gateway_and_service_error_bodies_map_with_their_message(
    status: int, body: dict[str, Any], kind: type[AEPError], text: str
) -> None:
    err = error_from_response(response(status, body), idempotent=True)
    assert type(err) is kind
    assert text in err.message


def test_a_response_without_a_request_still_maps() -> None:
    resp = response(503, b"")
    resp.request = None  # type: ignore[assignment]
    err = error_from_response(resp, idempotent=True)
    assert type(err) is TransientError
    assert err.method is None


# ------------------------------------------------------------------------------------------------
# error_from_exception, with real exceptions from real sockets


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_transient_even_for_a_post() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/data/core/ups/segment/jobs"
    with pytest.raises(requests.ConnectionError) as info:
        requests.post(url, json=[], timeout=2)
    err = error_from_exception(info.value, method="POST", url=url, idempotent=False)
    assert type(err) is TransientError
    assert refunds_quota(err)
    assert (err.method, err.url) == ("POST", url)


def test_a_read_timeout_on_a_post_means_the_outcome_is_unknown() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # accepts the connection in the backlog, never answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}/adhocrun"
        with pytest.raises(requests.ReadTimeout) as info:
            requests.post(url, json={}, timeout=(2, 0.2))
    post = error_from_exception(info.value, method="POST", url=url, idempotent=False)
    get = error_from_exception(info.value, method="GET", url=url, idempotent=True)
    assert type(post) is OutcomeUnknown
    assert not refunds_quota(post)
    assert type(get) is TransientError
    assert "ReadTimeout" in str(post)


def test_a_connect_timeout_is_transient_even_for_a_post() -> None:
    exc = requests.ConnectTimeout("connect timed out")
    assert type(error_from_exception(exc, method="POST", url=URL, idempotent=False)) is TransientError


def test_a_connection_reset_after_sending_a_post_means_the_outcome_is_unknown() -> None:
    exc = requests.ConnectionError(
        "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"
    )
    assert type(error_from_exception(exc, method="POST", url=URL, idempotent=False)) is OutcomeUnknown
    assert type(error_from_exception(exc, method="GET", url=URL, idempotent=True)) is TransientError


def test_a_chunked_encoding_error_on_a_post_means_the_outcome_is_unknown() -> None:
    exc = requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read, 90 more expected)")
    assert type(error_from_exception(exc, method="POST", url=URL, idempotent=False)) is OutcomeUnknown


# ------------------------------------------------------------------------------------------------
# Pickling: Celery serialises exceptions


ALL_ERRORS: list[AEPError] = [
    AEPError("root", status=418, request_id="r0", method="GET", url=URL),
    TransientError("t", status=503, request_id="r1", method="GET", url=URL),
    RateLimited("slow down", retry_after_s=38.0, status=429, request_id="r2", method="POST", url=URL),
    OutcomeUnknown("lost", method="POST", url=URL),
    MalformedResponse("html", status=200, method="GET", url=URL),
    PermanentError("p", status=400),
    AuthError("no", status=401, request_id="r3", method="GET", url=URL),
    NotFound("gone", status=404, method="GET", url=URL),
    Conflict("busy", segment_id="s1", order_id="o1", flow_run_id="f1", status=400, method="POST", url=URL),
    ValidationFailed("bad", status=400, method="POST", url=URL),
    JobFailed("failed", kind="export", job_id="722", aep_status="FAILED"),
    QuotaExhausted("no quota", quota="adhoc", reset_at=1_700_000_000.0),
]


@pytest.mark.parametrize("err", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_all_attributes_and_the_same_text(err: AEPError) -> None:
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert vars(clone) == vars(err)
    assert str(clone) == str(err)
    assert clone.args == err.args
    assert clone.message == err.message


def test_a_mapped_error_survives_pickling_with_its_http_context() -> None:
    msg = "Run already going on for audience s1 for order o1 with run id r1"
    err = error_from_response(
        response(400, {"message": msg}, headers={"x-request-id": "rid"}), idempotent=False
    )
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, Conflict)
    assert (clone.segment_id, clone.order_id, clone.flow_run_id) == ("s1", "o1", "r1")
    assert (clone.status, clone.request_id, clone.method, clone.url) == (400, "rid", "POST", URL)
    assert str(clone) == str(err)
    limited = error_from_response(response(429, b"", headers={"Retry-After": "7"}), idempotent=True)
    assert pickle.loads(pickle.dumps(limited)).retry_after_s == 7.0


def test_str_names_the_status_request_and_request_id_only_when_known() -> None:
    assert str(AEPError("plain")) == "plain"
    assert str(AEPError("m", status=500)) == "m (HTTP 500)"
    assert str(AEPError("m", method="GET")) == "m"
    assert str(AEPError("m", method="GET", url="u", request_id="r")) == "m [GET u] request-id=r"


# ------------------------------------------------------------------------------------------------
# refunds_quota: give a reservation back only when AEP demonstrably did not accept the POST


@pytest.mark.parametrize(
    ("err", "refund"),
    [
        (TransientError("refused"), True),
        (RateLimited("429"), True),
        (OutcomeUnknown("timeout after send"), False),
        (MalformedResponse("html 200"), False),
        (PermanentError("p"), True),
        (AuthError("401"), True),
        (NotFound("404"), True),
        (Conflict("busy"), True),
        (ValidationFailed("400"), True),
        (JobFailed("failed"), False),
        (QuotaExhausted("none"), False),
        (AEPError("root"), False),
        (ValueError("not ours"), False),
        (requests.ConnectionError("raw"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_refunds_quota_truth_table(err: BaseException, refund: bool) -> None:
    assert refunds_quota(err) is refund

"""The one exception tree, classified by what the caller does next::

    AEPError                      root; carries status, request_id, method, url (never a token)
    ├── TransientError            retry with jittered backoff (timeouts, 5xx, connection resets)
    │   ├── RateLimited           429: wait at least ``retry_after_s``, then retry
    │   ├── OutcomeUnknown        a POST was sent but no answer came: the job may exist; look before re-creating
    │   └── MalformedResponse     AEP answered 2xx with a body we cannot parse (HTML, wrong types, huge)
    ├── PermanentError            do not retry: fix the request or the account
    │   ├── AuthError             401/403 (after one token refresh) and IMS failures
    │   ├── NotFound              404
    │   ├── Conflict              400 "Run already going on for audience …": defer, do not fail
    │   ├── ValidationFailed      other 400/422: the request is wrong ("not part of this dataflow …")
    │   └── PreflightRefused      our own check before spending a slot: an audience not mapped to its dataflow
    ├── JobFailed                 an AEP job ended FAILED/CANCELLED
    │   └── DeadlineExceeded      an AEP job, or a wait, outlived its deadline (the job was cancelled)
    ├── Unaccounted               a POST's outcome could not be settled from AEP's own lists in time
    └── QuotaExhausted            our own ledger says no: wait until ``reset_at``

HTTP answers and transport exceptions map to this tree in exactly one place: :func:`error_from_response`
and :func:`error_from_exception`. Every exception pickles (Celery serialises them) because each class
rebuilds from its keyword state in ``__reduce__``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import requests

MAX_ERROR_TEXT = 500
"""Characters of an AEP error body kept in an exception message (hostile bodies can be huge)."""


class AEPError(Exception):
    """Root of every error this package raises about AEP or its quotas."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.method = method
        self.url = url

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "message"}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._state()))

    def __str__(self) -> str:
        where = f" [{self.method} {self.url}]" if self.method and self.url else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        rid = f" request-id={self.request_id}" if self.request_id else ""
        return f"{self.message}{status}{where}{rid}"


def _rebuild(cls: type[AEPError], message: str, state: dict[str, Any]) -> AEPError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.message = message
    exc.__dict__.update(state)
    return exc


class TransientError(AEPError):
    """Worth retrying later: the request did not succeed, through no fault of its own."""


class RateLimited(TransientError):
    """HTTP 429. ``retry_after_s`` is the server's ``Retry-After`` (seconds) when it sent one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class OutcomeUnknown(TransientError):
    """A non-idempotent request was sent, and the answer was lost (timeout, reset, 5xx).

    AEP may have created the job. Never re-send blindly: look for it first.
    """


class MalformedResponse(TransientError):
    """A 2xx answer whose body is not the documented JSON. Retried a bounded number of times."""


class PermanentError(AEPError):
    """Retrying the same request will not help."""


class AuthError(PermanentError):
    """Credentials, token or permissions were refused."""


class NotFound(PermanentError):
    """The job, run or destination does not exist."""


class ValidationFailed(PermanentError):
    """AEP rejected the request body (400), e.g. an audience not mapped to the dataflow."""


_RUN_GOING_ON = re.compile(
    r"Run already going on for audience (?P<segment>\S+) for order (?P<order>\S+) with run id (?P<run>\S+)"
)


class Conflict(PermanentError):
    """AEP's 400 "Run already going on for audience … for order … with run id …".

    Permanent for this attempt, but the right move is to defer the activation, not to fail the run.
    """

    def __init__(
        self,
        message: str,
        *,
        segment_id: str | None = None,
        order_id: str | None = None,
        flow_run_id: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.segment_id = segment_id
        self.order_id = order_id
        self.flow_run_id = flow_run_id


class PreflightRefused(PermanentError):
    """Checked before the run spends a scarce slot: AEP would refuse the activation (an unmapped audience)."""


class JobFailed(AEPError):
    """An AEP job or flow run reached a failed terminal state."""

    def __init__(self, message: str, *, kind: str = "", job_id: str = "", aep_status: str = "", **kw: Any):
        super().__init__(message, **kw)
        self.kind = kind
        self.job_id = job_id
        self.aep_status = aep_status


class DeadlineExceeded(JobFailed):
    """An AEP job (cancelled at AEP), or a wait for audiences held by others, outlived its deadline."""


class Unaccounted(AEPError):
    """A POST whose answer was lost could neither be found in AEP's lists nor proven absent in time."""


class QuotaExhausted(AEPError):
    """Our quota ledger refused a reservation. ``reset_at`` is the epoch second the window resets."""

    def __init__(self, message: str, *, quota: str = "", reset_at: float = 0.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.quota = quota
        self.reset_at = reset_at


# --------------------------------------------------------------------------------------------------


def _request_id(resp: requests.Response) -> str | None:
    return resp.headers.get("x-request-id") or resp.headers.get("X-Request-Id")


def _body_message(resp: requests.Response) -> str:
    """The human part of an AEP error body, whichever of the documented shapes it has."""
    text = resp.text[: 64 * 1024] if resp.content else ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "errorMessage", "detail", "title", "error_description", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                code = body.get("error_code")
                return f"{value} (error_code {code})" if code else value
    snippet = " ".join(text.split())
    return snippet[:MAX_ERROR_TEXT] or resp.reason or "no body"


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds. HTTP-date forms and junk give ``None`` (the caller backs off itself)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 86400 * 2 else None


def error_from_response(resp: requests.Response, *, idempotent: bool) -> AEPError:
    """Map a non-2xx answer to the tree. ``idempotent`` is False for POST: a 5xx then means *unknown*."""
    method = resp.request.method if resp.request is not None else None
    ctx: dict[str, Any] = {
        "status": resp.status_code,
        "request_id": _request_id(resp),
        "method": method,
        "url": resp.url,
    }
    text = _body_message(resp)[:MAX_ERROR_TEXT]
    status = resp.status_code
    if status == 429:
        return RateLimited(
            f"rate limited: {text}", retry_after_s=parse_retry_after(resp.headers.get("Retry-After")), **ctx
        )
    if status >= 500:
        if idempotent:
            return TransientError(f"AEP server error: {text}", **ctx)
        return OutcomeUnknown(f"AEP server error after the request was sent: {text}", **ctx)
    if status in (401, 403):
        return AuthError(f"not authorised: {text}", **ctx)
    if status == 404:
        return NotFound(f"not found: {text}", **ctx)
    if status == 400 and (m := _RUN_GOING_ON.search(text)):
        return Conflict(text, segment_id=m["segment"], order_id=m["order"], flow_run_id=m["run"].rstrip(".\"'"), **ctx)
    if status in (408, 425):
        return TransientError(f"AEP asked to retry: {text}", **ctx) if idempotent else OutcomeUnknown(text, **ctx)
    return ValidationFailed(f"request rejected: {text}", **ctx)


def error_from_exception(exc: requests.RequestException, *, method: str, url: str, idempotent: bool) -> AEPError:
    """Map a transport failure. A failure *before* sending is transient; after sending a POST it is unknown."""
    ctx: dict[str, Any] = {"method": method, "url": url}
    name = type(exc).__name__
    # ConnectTimeout and a refused connection mean nothing reached AEP: safe to retry, refund a quota.
    if isinstance(exc, requests.ConnectTimeout) or (isinstance(exc, requests.ConnectionError) and _never_sent(exc)):
        return TransientError(f"could not connect to AEP ({name})", **ctx)
    if idempotent:
        return TransientError(f"AEP did not answer ({name})", **ctx)
    return OutcomeUnknown(f"AEP did not answer after the request was sent ({name})", **ctx)


_NEVER_SENT = (
    "NewConnectionError", "Connection refused", "Name or service not known", "ConnectTimeout",
    # The server's certificate was refused: the TLS handshake failed before the request was written.
    "SSLCertVerificationError", "CERTIFICATE_VERIFY_FAILED",
)  # fmt: skip


def _never_sent(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return any(marker in text for marker in _NEVER_SENT)


def refunds_quota(exc: BaseException) -> bool:
    """True when AEP demonstrably did not accept a POST, so its quota reservation can be given back."""
    if isinstance(exc, OutcomeUnknown | MalformedResponse):
        return False
    return isinstance(exc, PermanentError | RateLimited | TransientError)

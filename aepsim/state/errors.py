"""``SimError``: an answer other than success, raised by the state machine and the api layer.

The state machine knows which AEP service it plays, so it raises that service's wire error: an HTTP
status and a JSON body, with no HTTP machinery. Each AEP service has its own error body (aep-api.md
§7.2), so there is one constructor per shape (the gateway's request-level ones are in ``api/errors.py``):

- gateway (``gateway_error``): ``{"error_code": "401013", "message": ...}`` (§7.1);
- ad-hoc activation (``adhoc_error``): ``{"message": ...}`` (S-ADHOC-YAML);
- segmentation, i.e. segment and export jobs (``ups_error``): undocumented (``content: {}``). We
  answer the problem-details shape other AEP services use plus a ``message`` key, so a client
  reading ``message`` or ``title``/``detail`` works: ``{"type", "title", "status", "detail", "message"}``;
- Flow Service (``flow_error``): the ``FLOW-1439-404`` shape of S-LABELS-MD;
- an unknown ``x-sandbox-name`` (``unknown_sandbox_error``): **undocumented** (aep-api.md has no sandbox
  header error). The simulator answers 403 in the gateway shape with an ``error_code`` of its own,
  ``403400``, used by no documented gateway error, and a message naming the sandbox and the org.
"""

from __future__ import annotations

from typing import Any

JsonBody = dict[str, Any]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class SimError(Exception):
    """An error answer: HTTP ``status``, JSON ``body`` (None = no body) and extra ``headers``."""

    def __init__(self, status: int, body: JsonBody | None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def gateway_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> SimError:
    return SimError(status, {"error_code": code, "message": message}, headers)


def adhoc_error(status: int, message: str) -> SimError:
    return SimError(status, {"message": message})


def ups_error(status: int, message: str, code: int = 1000) -> SimError:
    return SimError(
        status,
        {
            "type": f"https://ns.adobe.com/aep/errors/UPS-{code:04d}-{status}",
            "title": _TITLES.get(status, "Error"),
            "status": status,
            "detail": message,
            "message": message,
        },
    )


def flow_error(status: int, message: str, resource_id: str) -> SimError:
    code = 1439 if status == 404 else 1000
    return SimError(
        status,
        {
            "type": f"https://ns.adobe.com/aep/errors/FLOW-{code}-{status}",
            "title": "Resource not found" if status == 404 else _TITLES.get(status, "Error"),
            "status": status,
            "report": {"detailed-message": message, "id": resource_id, "type": "runs"},
            "errorMessage": message,
            "errorDetails": message,
        },
    )


def quota_error(message: str, retry_after_s: int) -> SimError:
    """An FAE quota exhausted. [inference] The real answer is undocumented (aep-api.md §12.11)."""
    return gateway_error(429, "429001", message, {"Retry-After": str(retry_after_s)})


def unknown_sandbox_error(name: str, org_id: str) -> SimError:
    return gateway_error(
        403, "403400", f"Sandbox {name!r} does not exist in organization {org_id} or is not accessible to this client"
    )

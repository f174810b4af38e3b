"""Request-level error answers of the api layer: the gateway's ``Content-Type`` 400, IMS's OAuth errors,
unknown paths and methods, and the one-line ``ValidationError`` description every 400 uses.

The state machine's service errors (segmentation, ad-hoc, Flow Service, quota, sandbox) and the
``SimError`` class itself live in ``state/errors.py``.
"""

from __future__ import annotations

from pydantic import ValidationError

from aep_activator.aepsim.state.errors import SimError, gateway_error


def content_type_error() -> SimError:
    # Verbatim from S-TROUBLE-MD (aep-api.md §7.1).
    return SimError(
        400,
        {
            "type": "/placeholder/type/uri",
            "status": 400,
            "title": "BadRequestError",
            "detail": "A valid content-type must be specified",
        },
    )


def oauth_error(status: int, error: str, description: str) -> SimError:
    """IMS: standard OAuth2 ``{"error", "error_description"}`` (unverified for IMS, aep-api.md §2.1)."""
    return SimError(status, {"error": error, "error_description": description})


def not_found() -> SimError:
    """A path the simulator does not serve, in the gateway's JSON shape (never HTML)."""
    return gateway_error(404, "404000", "Not Found")


def method_not_allowed() -> SimError:
    return gateway_error(405, "405000", "Method Not Allowed")


def internal_error() -> SimError:
    return gateway_error(500, "500000", "Internal Server Error")


def describe(exc: ValidationError, *, root: str | None = None) -> str:
    """A one-line message naming each invalid field, e.g. ``[0].segmentId: Field required``."""
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        if root is not None and loc and loc[0] == root:
            loc = loc[1:]  # the wire body was the bare array the model wraps in `root`
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "body"
        parts.append(f"{path}: {err['msg']}")
    return "Invalid request body: " + "; ".join(parts)

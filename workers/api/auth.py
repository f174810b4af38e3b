"""Who is calling: FastAPI dependencies that turn a key into a :class:`Principal`, or refuse.

A key comes as ``Authorization: Bearer <key>``, ``X-API-Key: <key>``, or (the console) the HttpOnly,
SameSite=Strict cookie ``aep_key`` set by the login form. No key or an unknown one: 401; a producer key
on an ops route: 403. With ``--insecure-no-auth`` (no key ring) everyone is ``anonymous`` with role ops.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from aep_activator.workers.api.keys import KeyRing, Principal

COOKIE = "aep_key"
ANONYMOUS = Principal("anonymous", "ops")


class LoginRequired(Exception):
    """A console page without a valid key: the handler redirects to the login form."""


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE) or None


def identify(request: Request) -> Principal | None:
    ring: KeyRing | None = request.app.state.keyring
    if ring is None:
        return ANONYMOUS
    key = presented_key(request)
    return ring.verify(key) if key else None


def principal(request: Request) -> Principal:
    """Any valid key (producer or ops)."""
    found = identify(request)
    if found is None:
        message = "invalid API key" if presented_key(request) else "an API key is required (Authorization: Bearer …)"
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})
    return found


def operator(request: Request) -> Principal:
    """A key of role ops (cancel, resume)."""
    found = principal(request)
    if not found.can_operate:
        raise HTTPException(403, f"key {found.name} has role {found.role}; cancel and resume need role ops")
    return found


def console_user(request: Request) -> Principal:
    found = identify(request)
    if found is None:
        raise LoginRequired()
    return found

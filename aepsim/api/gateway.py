"""IMS tokens and the Adobe API gateway's header checks (aep-api.md §2.1, §7.1).

``TokenStore`` remembers issued bearer tokens and expires them after ``expires_in`` seconds of
*simulated* time. ``issue_token`` implements ``POST /ims/token/v3`` (form body or query string, or
HTTP Basic client authentication, the two ``token_endpoint_auth_methods_supported``).
``check_gateway`` raises the documented gateway error for the first failing check, in this order:

=========================================  =====  ============  ===================================
condition                                  HTTP   error_code    source
=========================================  =====  ============  ===================================
no ``Authorization: Bearer …``             403    403010        S-TROUBLE-MD
unknown or expired token                   401    401013        S-TROUBLE-MD, S-DEST-YAML
no ``x-api-key``                           403    403000        S-TROUBLE-MD
``x-api-key`` not a known client id        403    403003        S-TROUBLE-MD
token issued to another client id          403    403025        our reading of "Profile is not valid"
no ``x-gw-ims-org-id``                     400    400003        S-TROUBLE-MD
unknown org id                             403    403027        S-TROUBLE-MD ("bad org ID")
``x-sandbox-name`` not a sandbox of the    403    403400        undocumented: our choice (errors.py)
org (absent: the default sandbox)
POST/PUT/PATCH without application/json    400    problem body  S-TROUBLE-MD
=========================================  =====  ============  ===================================

IMS error bodies are standard OAuth2 ``{"error", "error_description"}``, unverified for Adobe (§2.1).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Mapping

from aep_activator.aepsim.api.errors import content_type_error, oauth_error
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.state.clock import Clock
from aep_activator.aepsim.state.errors import gateway_error, unknown_sandbox_error
from aep_activator.aepsim.state.fixture import Fixture


class TokenStore:
    """Issued tokens and their expiry in simulated time; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self.issued = 0

    def issue(self, client_id: str, expires_in_s: int) -> str:
        token = "sim." + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (client_id, self._clock.now() + expires_in_s)
            self.issued += 1
        return token

    def client_of(self, token: str) -> str | None:
        """The client id the token was issued to, or None if unknown or expired."""
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or self._clock.now() >= entry[1]:
            return None
        return entry[0]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
            self.issued = 0


def valid_clients(config: SimulatorConfig, fixture: Fixture) -> dict[str, str]:
    if config.client_credentials is not None:
        return config.client_credentials
    return {c.clientId: c.clientSecret for c in fixture.clients}


def valid_orgs(config: SimulatorConfig, fixture: Fixture) -> list[str]:
    return config.org_ids if config.org_ids is not None else [fixture.orgId]


def issue_token(
    params: Mapping[str, str], authorization: str | None, config: SimulatorConfig, fixture: Fixture, store: TokenStore
) -> dict[str, object]:
    """``POST /ims/token/v3``: the token body, or ``SimError`` with an OAuth error body."""
    client_id, client_secret = params.get("client_id"), params.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise oauth_error(401, "invalid_client", "malformed Basic authorization") from None
        client_id, _, client_secret = decoded.partition(":")
    if params.get("grant_type") != "client_credentials":
        raise oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if not client_id:
        raise oauth_error(400, "invalid_request", "client_id is required")
    if not client_secret:
        raise oauth_error(400, "invalid_request", "client_secret is required")
    if not (params.get("scope") or params.get("scopes")):
        raise oauth_error(400, "invalid_scope", "scope is required")
    expected = valid_clients(config, fixture).get(client_id)
    if expected is None or not secrets.compare_digest(expected, client_secret):
        raise oauth_error(401, "invalid_client", "invalid client_id or client_secret")
    token = store.issue(client_id, config.token_expires_in_s)
    return {"access_token": token, "token_type": "bearer", "expires_in": config.token_expires_in_s}


def check_gateway(
    method: str, headers: Mapping[str, str], config: SimulatorConfig, fixture: Fixture, store: TokenStore
) -> None:
    """Raise the gateway's ``SimError`` for the first failing header check (table above)."""
    auth = headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise gateway_error(403, "403010", "Oauth token is missing.")
    token = token.strip()
    is_static = config.static_token is not None and secrets.compare_digest(token, config.static_token)
    owner = None if is_static else store.client_of(token)
    if not is_static and owner is None:
        raise gateway_error(401, "401013", "Oauth token is not valid")
    api_key = headers.get("x-api-key")
    if not api_key:
        raise gateway_error(403, "403000", "Api Key is required")
    if api_key not in valid_clients(config, fixture):
        raise gateway_error(403, "403003", "Api Key is invalid")
    if owner is not None and owner != api_key:
        raise gateway_error(403, "403025", "Profile is not valid")
    org = headers.get("x-gw-ims-org-id")
    if not org:
        raise gateway_error(400, "400003", "Missing header")
    if org not in valid_orgs(config, fixture):
        raise gateway_error(403, "403027", "User region is missing")
    sandbox = headers.get("x-sandbox-name")
    if sandbox and sandbox.strip() and fixture.sandbox(sandbox.strip()) is None:
        raise unknown_sandbox_error(sandbox, org)
    if method in ("POST", "PUT", "PATCH"):
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise content_type_error()

"""Access tokens for AEP: a static token, or IMS OAuth server-to-server with a Redis cache.

IMS (https://developer.adobe.com/developer-console/docs/guides/authentication/ServerToServerAuthentication/):
``POST {ims}/ims/token/v3`` form-encoded ``grant_type=client_credentials&client_id&client_secret&scope``
answers ``{"access_token", "token_type", "expires_in"}`` with ``expires_in`` in **seconds**. Adobe asks
clients to cache tokens ("Adobe can throttle your integration if it generates too many access tokens"),
so one token is shared by every worker process through Redis.

Refresh is single-flight: the process that wins a short Redis lock fetches a new token; the others
keep using the cached one while it is still valid, and otherwise raise :class:`TokenRefreshBusy`
(a ``RateLimited``) so a Celery task reschedules instead of sleeping. A token is refreshed
``refresh_margin_s`` before it expires, and at once when AEP answers 401 for it (``invalidate``).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import redis
import requests
from pydantic import SecretStr, ValidationError

from aep_activator.aep.api.errors import AuthError, RateLimited, TransientError, error_from_exception
from aep_activator.aep.api.models import TokenResponse
from aep_activator.aep.coordination.scripts import load_script


class TokenProvider(Protocol):
    def token(self) -> str:
        """A bearer token valid right now."""
        ...

    def invalidate(self, token: str) -> None:
        """AEP refused ``token`` (401): forget it so the next ``token()`` fetches a new one."""
        ...


class StaticToken:
    """``AEP_ACCESS_TOKEN``: bypasses IMS. It cannot be refreshed."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def token(self) -> str:
        return self._token.get_secret_value()

    def invalidate(self, token: str) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticToken(**********)"


class TokenRefreshBusy(RateLimited):
    """Another process is fetching the first token; retry in a moment."""


class IMSTokenProvider:
    """A token cached in Redis under ``{prefix}ims:token:{hash(ims_url, org_id, client_id, scopes)}``.

    The IMS host and the org are part of the key: after ``AEP_IMS_URL`` or ``AEP_ORG_ID`` changes, the
    token another IMS or org issued is not reused (it would only be found out by AEP's 401).
    """

    def __init__(
        self,
        *,
        ims_url: str,
        client_id: str,
        client_secret: SecretStr,
        scopes: str,
        redis_client: redis.Redis,
        prefix: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        refresh_margin_s: float = 600.0,
        lock_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        org_id: str = "",
    ) -> None:
        self._url = ims_url.rstrip("/") + "/ims/token/v3"
        self._client_id = client_id
        self._secret = client_secret
        self._scopes = scopes
        self._redis = redis_client
        digest = hashlib.sha256(f"{self._url}|{org_id}|{client_id}|{scopes}".encode()).hexdigest()[:16]
        self._key = f"{prefix}ims:token:{digest}"
        self._lock_key = f"{prefix}ims:lock:{digest}"
        self._session = session or requests.Session()
        self._timeout = timeout
        self._margin = refresh_margin_s
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._clock = clock
        self.fetches = 0  # tokens this instance fetched from IMS (for tests and stats)
        self._local: tuple[str, float] | None = None
        self._unlock = load_script(redis_client, "compare_and_delete")

    def __repr__(self) -> str:
        return f"IMSTokenProvider(url={self._url!r}, client_id={self._client_id!r}, secret=**********)"

    def _cached(self) -> tuple[str, float] | None:
        raw = self._redis.get(self._key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return str(data["access_token"]), float(data["expires_at"])
        except (ValueError, KeyError, TypeError):
            return None

    def token(self) -> str:
        now = self._clock()
        # This process's copy first: reading Redis before every AEP request costs a round trip each.
        # Another process's refresh is picked up once our copy nears expiry, or after a 401 (invalidate).
        if self._local is not None and now < self._local[1] - self._margin:
            return self._local[0]
        cached = self._cached()
        if cached and now < cached[1] - self._margin:
            self._local = cached
            return cached[0]
        lock_id = uuid.uuid4().hex
        if not self._redis.set(self._lock_key, lock_id, nx=True, px=self._lock_ttl_ms):
            # Someone else is refreshing. A token that is still valid is good enough meanwhile.
            if cached and now < cached[1]:
                return cached[0]
            raise TokenRefreshBusy("another process is fetching an IMS token", retry_after_s=1.0)
        try:
            # Re-check under the lock: the previous holder may have just stored a fresh token.
            cached = self._cached()
            if cached and self._clock() < cached[1] - self._margin:
                self._local = cached
                return cached[0]
            return self._fetch()
        finally:
            self._release(lock_id)

    def _release(self, lock_id: str) -> None:
        # Compare-and-delete, so a lock that expired and was re-taken is not released by us.
        self._unlock(keys=[self._lock_key], args=[lock_id])

    def _fetch(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
            "scope": self._scopes,
        }
        try:
            resp = self._session.post(self._url, data=form, timeout=self._timeout)
        except requests.RequestException as exc:
            # Fetching a token has no side effect worth protecting: treat as idempotent.
            raise error_from_exception(exc, method="POST", url=self._url, idempotent=True) from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientError(
                f"IMS answered {resp.status_code}", status=resp.status_code, method="POST", url=self._url
            )
        if resp.status_code != 200:
            message = _ims_error(resp)
            if secret := self._secret.get_secret_value():
                # IMS's error text is server-controlled: never let it echo the secret into logs.
                message = message.replace(secret, "**********")
            raise AuthError(message, status=resp.status_code, method="POST", url=self._url)
        try:
            body = TokenResponse.model_validate_json(resp.content)
        except ValidationError:
            raise AuthError("IMS answered 200 without a usable token", method="POST", url=self._url) from None
        expires_at = self._clock() + body.expires_in
        ttl_ms = max(1000, int(body.expires_in * 1000))
        self._redis.set(self._key, json.dumps({"access_token": body.access_token, "expires_at": expires_at}), px=ttl_ms)
        self.fetches += 1
        self._local = (body.access_token, expires_at)
        return body.access_token

    def invalidate(self, token: str) -> None:
        if self._local is not None and self._local[0] == token:
            self._local = None
        cached = self._cached()
        if cached and cached[0] == token:
            self._redis.delete(self._key)


def _ims_error(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        desc = body.get("error_description")
        return f"IMS refused the credentials: {body['error']}" + (f" ({desc})" if isinstance(desc, str) else "")
    return f"IMS refused the credentials (HTTP {resp.status_code})"

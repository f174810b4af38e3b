"""The IMS access token shared by every worker process, and the lock that makes its refresh single-flight.

Keys (``keys.py`` has the whole layout), per IMS host, org, OAuth client and scope set (``digest`` is the
first 16 hex characters of SHA-256 over ``<IMS URL>|<org id>|<client id>|<scopes>``):

    {prefix}ims:token:{digest}   STRING JSON {access_token, expires_at (epoch s)}, PX = the token's lifetime
    {prefix}ims:lock:{digest}    STRING the refreshing process's lock id, PX = lock_ttl_s

Only IMS knows what a token means (aep/api/auth.py); this is where it is kept.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import redis

from aep_activator.aep.coordination.scripts import load_script


class RedisTokenCache:
    """One cached token and its refresh lock in Redis (the ``TokenCache`` of aep/api/auth.py)."""

    def __init__(
        self, client: redis.Redis, prefix: str, *, client_id: str, scopes: str, ims_url: str = "", org_id: str = "",
        lock_ttl_s: float = 30.0,
    ) -> None:
        self._redis = client
        # The IMS host and the org are part of the key: after AEP_IMS_URL or AEP_ORG_ID changes, a token
        # that another IMS or org issued is not reused (only AEP's 401 would find it out).
        digest = hashlib.sha256(f"{ims_url.rstrip('/')}|{org_id}|{client_id}|{scopes}".encode()).hexdigest()[:16]
        self.key = f"{prefix}ims:token:{digest}"
        self.lock_key = f"{prefix}ims:lock:{digest}"
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._unlock = load_script(client, "compare_and_delete")

    def get(self) -> tuple[str, float] | None:
        """The cached token and its expiry (epoch s); None when there is none or it does not parse."""
        raw = self._redis.get(self.key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return str(data["access_token"]), float(data["expires_at"])
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, token: str, expires_at: float, ttl_ms: int) -> None:
        self._redis.set(self.key, json.dumps({"access_token": token, "expires_at": expires_at}), px=ttl_ms)

    def forget(self, token: str) -> None:
        """Delete the cached token if it is ``token`` (AEP refused it)."""
        cached = self.get()
        if cached and cached[0] == token:
            self._redis.delete(self.key)

    def lock(self) -> str | None:
        """Take the refresh lock: its id, or None when another process holds it."""
        lock_id = uuid.uuid4().hex
        return lock_id if self._redis.set(self.lock_key, lock_id, nx=True, px=self._lock_ttl_ms) else None

    def unlock(self, lock_id: str) -> None:
        # Compare-and-delete, so a lock that expired and was re-taken is not released by us.
        self._unlock(keys=[self.lock_key], args=[lock_id])

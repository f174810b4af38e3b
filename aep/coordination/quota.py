"""The quota ledger: reserve -> commit | refund against calendar-window quotas in Redis.

AEP allows very few runs: 20 ad-hoc activations a day per org and 2 on-demand segment jobs a day
per sandbox (https://experienceleague.adobe.com/en/docs/experience-platform/destinations/api/ad-hoc-activation-api).
One overshoot burns a scarce quota, so this is a ledger, not a rate limit:

1. ``reserve`` takes a slot before the POST (atomic Lua; never exceeds the limit, under any concurrency);
2. ``commit`` records that AEP accepted it; ``refund`` returns the slot when the POST was not made
   or was rejected. A reservation whose worker crashed lapses on its own after ``ttl_s``.

Windows are aligned to the calendar: ``window_start = floor(now / window_s) * window_s`` in epoch
seconds, so the default ``window_s = 86400`` is the UTC day. Time comes from the injected ``clock``
and is passed to Lua in ARGV (never Redis ``TIME``), so tests can cross a UTC midnight.

Redis key layout (also in the header of each ``aep/lua/quota_*.lua``)::

    {prefix}quota:{name}:{scope}:{window_start}:committed   SET   holders AEP accepted
    {prefix}quota:{name}:{scope}:{window_start}:reserved    ZSET  holder -> expiry (epoch s)

``name`` and ``scope`` are percent-encoded (``urllib.parse.quote(safe="")``), so an org id like
``ABC@AdobeOrg`` or a scope containing ``:`` cannot split or collide with another key, glob
characters cannot leak into ``SCAN`` patterns, and keys stay readable. Both keys expire at the end
of the window plus one more window (measured on the injected clock), so old windows vanish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import redis
from redis.commands.core import Script

from aep_activator.aep.coordination.scripts import load_script

QUOTA_KEY_SEGMENT = "quota"


@dataclass(frozen=True)
class QuotaUsage:
    """A snapshot of one quota window. ``used`` counts commits, ``reserved`` live reservations."""

    name: str
    scope: str
    limit: int
    used: int
    reserved: int
    window_start: int
    reset_at: float  # epoch seconds at which the next window starts

    @property
    def remaining(self) -> int:
        """Slots still reservable in this window (never negative, even after a late commit)."""
        return max(0, self.limit - self.used - self.reserved)


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``. Pass ``window_start`` back to ``commit``/``refund``.

    ``already`` is True when this holder had already reserved or committed in this window
    (a retried step), in which case ``ok`` is True and no new slot was taken.
    """

    ok: bool
    holder: str
    window_start: int
    usage: QuotaUsage
    already: bool


class RedisQuotaLedger:
    """Calendar-window quotas stored in Redis; safe to share between processes and hosts."""

    def __init__(
        self,
        redis: redis.Redis,
        prefix: str,
        *,
        window_s: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._redis = redis
        self._prefix = prefix
        self._window_s = window_s
        self._clock = clock
        # Registered scripts run by EVALSHA and fall back to EVAL when the server lacks them.
        self._reserve: Script = load_script(redis, "quota_reserve")
        self._commit: Script = load_script(redis, "quota_commit")

    def window_start(self, now: float | None = None) -> int:
        """The start (epoch s) of the window containing ``now`` (default: the clock's now)."""
        t = self._clock() if now is None else now
        return math.floor(t / self._window_s) * self._window_s

    def reserve(self, name: str, scope: str, limit: int, holder: str, ttl_s: float) -> Reservation:
        """Atomically reserve one slot of ``name``/``scope`` for ``holder`` in the current window.

        Refused (``ok=False``) when committed + live reservations + 1 would exceed ``limit``;
        ``limit <= 0`` refuses every new holder. Idempotent per holder and window: a holder that
        already reserved (its lease is renewed to ``ttl_s``) or committed gets ``ok, already``.
        An uncommitted reservation lapses after ``ttl_s`` seconds.
        """
        if not holder:
            raise ValueError("holder must be a non-empty idempotency key")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        now = self._clock()
        ws = self.window_start(now)
        ok, already, used, reserved = self._reserve(
            keys=self._keys(name, scope, ws),
            args=[holder, limit, repr(now), repr(now + ttl_s), self._key_ttl_ms(ws, now)],
        )
        usage = self._usage(name, scope, limit, ws, int(used), int(reserved))
        return Reservation(ok=bool(ok), holder=holder, window_start=ws, usage=usage, already=bool(already))

    def commit(self, name: str, scope: str, holder: str, window_start: int) -> None:
        """Record that AEP accepted ``holder``'s run in ``window_start``. Idempotent.

        Commits even when the reservation has expired, and even if that pushes ``used`` above the
        limit: AEP accepted the POST, so its quota is spent whatever the ledger thought, and the
        ledger must show reality so that later reserves are refused.
        """
        self._check_window(window_start)
        self._commit(
            keys=self._keys(name, scope, window_start),
            args=[holder, self._key_ttl_ms(window_start, self._clock())],
        )

    def refund(self, name: str, scope: str, holder: str, window_start: int) -> None:
        """Free ``holder``'s live reservation, if any. Never removes a commit. Idempotent."""
        self._check_window(window_start)
        # One ZREM is atomic on its own; a script would add nothing.
        self._redis.zrem(self._keys(name, scope, window_start)[1], holder)

    def usage(self, name: str, scope: str, limit: int) -> QuotaUsage:
        """The current window's usage. Read-only: expired reservations are excluded, not purged."""
        now = self._clock()
        ws = self.window_start(now)
        committed, reserved = self._keys(name, scope, ws)
        pipe = self._redis.pipeline(transaction=True)  # MULTI/EXEC: both counts from one instant
        pipe.scard(committed)
        pipe.zcount(reserved, f"({now!r}", "+inf")  # live means expiry > now, as in the script
        used, live = pipe.execute()
        return self._usage(name, scope, limit, ws, int(used), int(live))

    def _usage(self, name: str, scope: str, limit: int, ws: int, used: int, reserved: int) -> QuotaUsage:
        return QuotaUsage(name, scope, limit, used, reserved, ws, float(ws + self._window_s))

    def _keys(self, name: str, scope: str, window_start: int) -> list[str]:
        name_part, scope_part = quote(name, safe=""), quote(scope, safe="")
        base = f"{self._prefix}{QUOTA_KEY_SEGMENT}:{name_part}:{scope_part}:{window_start}"
        return [f"{base}:committed", f"{base}:reserved"]

    def _key_ttl_ms(self, window_start: int, now: float) -> int:
        # Relative to the injected clock rather than EXPIREAT on Redis's clock: a fake clock in the
        # past must not delete keys at once. Clamped to 1 ms, since PEXPIRE <= 0 deletes the key.
        return max(1, math.ceil((window_start + 2 * self._window_s - now) * 1000))

    def _check_window(self, window_start: int) -> None:
        if window_start % self._window_s:
            raise ValueError(f"window_start {window_start} is not aligned to window_s={self._window_s}")

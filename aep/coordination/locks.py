"""One ad-hoc run per audience at a time, enforced by us before AEP has to.

AEP rejects a second concurrent ad-hoc activation on an audience ("Run already going on for
audience ..."; https://experienceleague.adobe.com/en/docs/experience-platform/destinations/api/ad-hoc-activation-api),
and a rejected POST may still have cost a quota slot, so a run takes a lock on every audience it
activates first. The acquire is all-or-nothing, so two runs with overlapping sets cannot each hold
half and deadlock.

Redis key layout (also in the header of each ``aep/lua/locks_*.lua``)::

    {prefix}lock:audience:{audience}                     STRING  owner (a run id), with a PX expiry
    {prefix}lock:sandbox:{sandbox}:audience:{audience}   the same, for a named sandbox (``for_sandbox``):
                                                         audience ids belong to a sandbox

The audience id is the last key segment, so it is used verbatim: a ``:`` inside it cannot make two
audiences share a key. Every lock has a TTL so that a crashed worker's locks lapse; a long run keeps
them with ``refresh``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.commands.core import Script

from aep_activator.aep.coordination.replies import as_text
from aep_activator.aep.coordination.scripts import load_script

AUDIENCE_LOCK_SEGMENT = "lock:audience"


@dataclass(frozen=True)
class LockResult:
    """``ok`` when every lock is now held by the caller; else ``conflicts`` maps audience -> owner."""

    ok: bool
    conflicts: dict[str, str]


class AudienceLocks:
    """Per-audience mutual exclusion between runs, shared by every worker on one Redis."""

    def __init__(self, redis: redis.Redis, prefix: str, *, sandbox: str | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._segment = AUDIENCE_LOCK_SEGMENT if sandbox is None else f"lock:sandbox:{sandbox}:audience"
        self._acquire: Script = load_script(redis, "locks_acquire")
        self._refresh: Script = load_script(redis, "locks_refresh")
        self._release: Script = load_script(redis, "locks_release")

    def acquire(self, audiences: Sequence[str], owner: str, ttl_s: float) -> LockResult:
        """Lock all ``audiences`` for ``owner`` for ``ttl_s`` seconds, or none of them (atomic).

        Re-entrant: locks ``owner`` already holds count as free and get their TTL reset.
        On conflict nothing is written and ``conflicts`` names each audience held by another owner.
        """
        names = _unique(audiences)
        if not names:
            return LockResult(ok=True, conflicts={})
        flat = self._acquire(keys=self.keys(names), args=[_owner(owner), _ttl_ms(ttl_s)])
        conflicts = {names[int(flat[i]) - 1]: as_text(flat[i + 1]) for i in range(0, len(flat), 2)}
        return LockResult(ok=not conflicts, conflicts=conflicts)

    def refresh(self, audiences: Sequence[str], owner: str, ttl_s: float) -> bool:
        """Reset to ``ttl_s`` the TTL of each lock ``owner`` still holds; never takes a lock.

        Returns False if any of them was lost (expired, or now held by someone else); the caller
        should then stop, because another run may be going on for that audience.
        """
        names = _unique(audiences)
        if not names:
            return True
        lost = self._refresh(keys=self.keys(names), args=[_owner(owner), _ttl_ms(ttl_s)])
        return int(lost) == 0

    def release(self, audiences: Sequence[str], owner: str) -> None:
        """Delete the locks ``owner`` holds; locks held by anyone else are left alone. Idempotent."""
        names = _unique(audiences)
        if names:
            self._release(keys=self.keys(names), args=[_owner(owner)])

    def owners(self, audiences: Sequence[str]) -> dict[str, str | None]:
        """The current owner of each audience's lock, or None when it is free."""
        names = _unique(audiences)
        if not names:
            return {}
        values: list[bytes | str | None] = self._redis.mget(self.keys(names))
        return {a: None if v is None else as_text(v) for a, v in zip(names, values, strict=True)}

    def keys(self, audiences: Sequence[str]) -> list[str]:
        """The lock keys of ``audiences`` (the run ledger releases them when a run ends)."""
        return [f"{self._prefix}{self._segment}:{a}" for a in audiences]

    def for_sandbox(self, sandbox: str | None) -> AudienceLocks:
        """The locks of ``sandbox``'s audiences (None: AEP's default sandbox)."""
        view = AudienceLocks.__new__(AudienceLocks)
        view.__dict__.update(self.__dict__)
        view._segment = AUDIENCE_LOCK_SEGMENT if sandbox is None else f"lock:sandbox:{sandbox}:audience"
        return view


def _unique(audiences: Sequence[str]) -> list[str]:
    # A bare str is a Sequence[str] too; treating "abc" as three audiences would be a silent bug.
    if isinstance(audiences, str):
        raise TypeError("audiences must be a sequence of audience ids, not a single str")
    return list(dict.fromkeys(audiences))


def _owner(owner: str) -> str:
    if not owner:
        raise ValueError("owner must be a non-empty run id")
    return owner


def _ttl_ms(ttl_s: float) -> int:
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    return max(1, math.ceil(ttl_s * 1000))

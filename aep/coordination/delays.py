"""Delayed tasks kept in Redis instead of as ETA messages in the broker.

Why not ``self.retry(countdown=…)`` straight onto the Redis broker: a worker prefetches ETA messages
and holds them, unacknowledged, in memory until they are due. Ten thousand waiting runs would sit in
one worker's RAM, and any message held longer than the transport's ``visibility_timeout`` is
redelivered to another worker while the first still holds it (a duplicate step). Keeping the delay
in a Redis sorted set means the broker only ever carries messages that are due now, so the
``visibility_timeout`` only has to cover one task's execution (minutes), crash recovery is quick,
and a worker's memory does not grow with the number of waiting runs.

A pump in every worker (``workers/pump.py``) moves due members to the broker. Pops are leased: a
pump that dies between pop and publish leaves a lease that expires, and the member is published
again (at least once). Duplicates are harmless because each step fences itself (``RunLedger.enter``)
and every POST is guarded by the run ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from aep_activator.aep.coordination.scripts import load_script


class RedisDelayQueue:
    def __init__(
        self, client: redis.Redis, prefix: str, *, lease_s: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._r = client
        self.due_key = f"{prefix}delay:due"
        self.lease_key = f"{prefix}delay:lease"
        self.payload_key = f"{prefix}delay:payload"
        self._lease_s = lease_s
        self._clock = clock
        self._pop = load_script(client, "delay_pop")

    def schedule(self, member: str, payload: str, due_at: float) -> None:
        """Idempotent for a given ``member``: scheduling it twice keeps one entry (the later due time)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self.payload_key, member, payload)
        pipe.zadd(self.due_key, {member: due_at})
        pipe.execute()

    def pop_due(self, limit: int = 500) -> list[tuple[str, str]]:
        raw = self._pop(
            keys=[self.due_key, self.lease_key, self.payload_key], args=[self._clock(), limit, self._lease_s]
        )
        items = [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
        return list(zip(items[0::2], items[1::2], strict=True))

    def ack(self, member: str) -> None:
        """The member was published: forget it."""
        pipe = self._r.pipeline(transaction=True)
        pipe.zrem(self.lease_key, member)
        # Keep the payload if the member was re-scheduled meanwhile (it is due again).
        pipe.zscore(self.due_key, member)
        _, score = pipe.execute()
        if score is None:
            self._r.hdel(self.payload_key, member)

    def pending(self) -> int:
        return int(self._r.zcard(self.due_key)) + int(self._r.zcard(self.lease_key))

    def next_due(self, member: str) -> float | None:
        score = self._r.zscore(self.due_key, member)
        return float(score) if score is not None else None

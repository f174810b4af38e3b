"""How long AEP's jobs took lately, per kind of job and sandbox, shared by every worker (adaptive polls).

Key layout (``keys.py``): ``durations:{kind}:{sandbox}`` LIST of seconds, newest first, trimmed to
``size`` and expiring ``ttl_s`` after the last job seen. A step that sees its job done adds the
duration in the script it leaves with (``entry``, ``run_leave.lua``), so a step run twice adds it once;
``observe`` writes one alone. Reads are cached in the process for ``cache_s``, so a poll costs no round
trip of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from aep_activator.aep.coordination.keys import Keys


class DurationSummary:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        size: int = 64,
        ttl_s: float = 30 * 86400.0,
        cache_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._r = client
        self._keys = keys
        self.size = size
        self._ttl_s = int(ttl_s)
        self._cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[float, list[float]]] = {}

    def observe(self, kind: str, sandbox: str | None, duration_s: float) -> None:
        """Record that a ``kind`` job of ``sandbox`` took ``duration_s`` (from its creation to its end as AEP
        dates it, or to when a poll saw it done: ``steps/polls.py`` ``job_ended``)."""
        key = self._keys.durations(kind, sandbox or "-")
        pipe = self._r.pipeline(transaction=False)
        pipe.lpush(key, f"{duration_s:.3f}")
        pipe.ltrim(key, 0, self.size - 1)
        pipe.expire(key, self._ttl_s)
        pipe.execute()
        self._cache.pop(key, None)

    def entry(self, kind: str, sandbox: str | None, duration_s: float) -> dict[str, Any]:
        """What ``run_leave.lua`` adds for a ``kind`` job of ``sandbox`` that took ``duration_s``."""
        key = self._keys.durations(kind, sandbox or "-")
        self._cache.pop(key, None)  # this process reads the summary afresh next time
        return {"key": key, "value": f"{duration_s:.3f}", "size": self.size, "ttl": self._ttl_s}

    def recent(self, kind: str, sandbox: str | None) -> list[float]:
        """The durations seen lately (at most ``size``; possibly ``cache_s`` old)."""
        key = self._keys.durations(kind, sandbox or "-")
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        values: list[float] = []
        for raw in self._r.lrange(key, 0, self.size - 1):
            try:
                values.append(float(raw))
            except ValueError:
                continue
        self._cache[key] = (now, values)
        return values

"""Daily quota counters keyed by (kind, scope, UTC day): the simulator's side of AEP's daily limits.

Not thread-safe by itself: ``SimulatorState`` calls it under its lock, so a check and the
following ``take`` are one atomic step. Days are UTC calendar days computed from the injected clock.
"""

from __future__ import annotations

from collections import defaultdict

from aep_activator.aepsim.clock import utc_day

ADHOC = "adhoc_jobs_per_org"
SEGMENT = "segment_jobs_per_sandbox"


class DailyQuota:
    """Counts uses per (kind, scope) per UTC day; old days are kept for ``/simulator/stats``."""

    def __init__(self) -> None:
        self._used: dict[tuple[str, str, str], int] = defaultdict(int)

    def used(self, kind: str, scope: str, now: float) -> int:
        return self._used.get((kind, scope, utc_day(now)), 0)

    def take(self, kind: str, scope: str, now: float, n: int = 1) -> int:
        """Record ``n`` uses today; returns the new count."""
        key = (kind, scope, utc_day(now))
        self._used[key] += n
        return self._used[key]

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{kind: {day: {scope: used}}}``."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (kind, scope, day), n in sorted(self._used.items()):
            out.setdefault(kind, {}).setdefault(day, {})[scope] = n
        return out

    def clear(self) -> None:
        self._used.clear()

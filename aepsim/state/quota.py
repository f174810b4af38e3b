"""Quota counters keyed by (kind, scope, window): the simulator's side of AEP's daily and yearly limits.

A window is a label: the UTC day (``YYYY-MM-DD``) for daily limits, the first day of the yearly
window for yearly ones. Not thread-safe by itself: ``SimulatorState`` calls it under its lock, so a
check and the following ``take`` are one atomic step.
"""

from __future__ import annotations

from collections import defaultdict

ADHOC = "adhoc_jobs_per_org"
SEGMENT = "segment_jobs_per_sandbox"
SEGMENT_YEAR = "segment_jobs_per_sandbox_per_year"


class QuotaCounter:
    """Counts uses per (kind, scope) per window; old windows are kept for ``/simulator/stats``."""

    def __init__(self) -> None:
        self._used: dict[tuple[str, str, str], int] = defaultdict(int)

    def used(self, kind: str, scope: str, window: str) -> int:
        return self._used.get((kind, scope, window), 0)

    def take(self, kind: str, scope: str, window: str, n: int = 1) -> int:
        """Record ``n`` uses in ``window``; returns the new count."""
        key = (kind, scope, window)
        self._used[key] += n
        return self._used[key]

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{kind: {window: {scope: used}}}``."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (kind, scope, window), n in sorted(self._used.items()):
            out.setdefault(kind, {}).setdefault(window, {})[scope] = n
        return out

    def clear(self) -> None:
        self._used.clear()

"""Clocks for the simulator: every time the state machine reads comes from an injected ``Clock``.

``SystemClock`` is wall time; ``ManualClock`` only moves when a test calls ``advance``. Both return
epoch seconds as a float. The UTC-day helpers exist because AEP's daily limits reset at 00:00 UTC
(flexible audience evaluation guide: "This limit resets at midnight (UTC)"); the year-window helper
because the yearly FAE limit "is reset on your contract's anniversary date" (taken at 00:00 UTC).
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now() -> float`` (epoch seconds)."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that stands still until ``advance`` is called; safe to share between threads."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must be >= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, epoch_s: float) -> None:
        with self._lock:
            self._now = epoch_s


def utc_day(epoch_s: float) -> str:
    """The UTC calendar day of ``epoch_s`` as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d")


def seconds_until_next_utc_midnight(epoch_s: float) -> int:
    """Whole seconds (at least 1) from ``epoch_s`` to the next 00:00 UTC."""
    now = datetime.fromtimestamp(epoch_s, UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil(midnight.timestamp() - epoch_s))


def epoch_ms(epoch_s: float) -> int:
    """Epoch seconds to the integer milliseconds AEP uses for ``creationTime`` and friends."""
    return int(epoch_s * 1000)


def year_window(epoch_s: float, start_mm_dd: str) -> tuple[str, float]:
    """The yearly window holding ``epoch_s`` for windows opening on ``start_mm_dd`` (``MM-DD``, 00:00 UTC).

    Returns ``(first day as YYYY-MM-DD, epoch seconds of the next opening)``.
    """
    month, day = (int(part) for part in start_mm_dd.split("-"))
    now = datetime.fromtimestamp(epoch_s, UTC)
    opening = datetime(now.year, month, day, tzinfo=UTC)
    if opening > now:
        opening = opening.replace(year=now.year - 1)
    return opening.strftime("%Y-%m-%d"), opening.replace(year=opening.year + 1).timestamp()

"""Backoff arithmetic: one pure function, used by every retry and poll in the system."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PollSchedule:
    """How often to look at one kind of AEP job, and for how long.

    ``delay(n)`` for the n-th check (0-based) is ``initial_s * factor**n`` capped at ``cap_s``.
    ``deadline_s`` is measured from the job's creation; past it the job is cancelled and the run fails.
    """

    initial_s: float
    factor: float
    cap_s: float
    deadline_s: float

    def delay(self, attempt: int, *, jitter: float = 0.0, rng: random.Random | None = None) -> float:
        return backoff(attempt, self.initial_s, self.factor, self.cap_s, jitter=jitter, rng=rng)


def backoff(
    attempt: int,
    initial_s: float,
    factor: float,
    cap_s: float,
    *,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: ``min(cap, initial * factor**attempt)``.

    ``jitter`` in [0, 1] is the share of the delay that is randomised ("equal jitter"): with 0.5 the
    result lies in [0.5·d, d]. Jitter spreads retries of many runs that failed together.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if initial_s < 0 or cap_s < 0 or factor < 1:
        raise ValueError("initial_s and cap_s must be >= 0 and factor >= 1")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter must lie in [0, 1]")
    # factor**attempt overflows a float for large attempts (2.0**1100, 1e6**64): that delay is the cap.
    # The exponent is not clamped, so a small factor (1.01) still grows all the way to the cap.
    try:
        grown = initial_s * float(factor) ** attempt
    except OverflowError:
        grown = math.inf if initial_s else 0.0
    delay = min(cap_s, grown)
    if jitter:
        r = (rng or random).random()
        delay = delay * (1 - jitter) + delay * jitter * r
    return delay

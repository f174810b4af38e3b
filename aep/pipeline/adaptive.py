"""Adaptive polls (issue 13): a job's next look, from the durations seen recently for its kind.

Pure arithmetic; the durations come from :class:`aep_activator.aep.coordination.durations.DurationSummary`.
With at least ``min_samples`` durations seen, a poll waits

- until the ``EARLY_Q`` quantile of those durations while the job is younger than that (few polls
  while it is unlikely to be done),
- ``DENSE`` times the job's age between that and the ``LATE_Q`` quantile (dense polls around its likely
  end: a job is seen within about ``DENSE`` of its duration after it ends),
- the configured cap after that (the job outlived every duration seen),

never longer than the schedule's cap nor past its deadline, with the schedule's equal jitter (which
only shortens a delay). With fewer durations it answers ``None`` and the caller keeps the geometric
schedule (``backoff.PollSchedule``). Errors, ``Retry-After`` and deadlines are handled where they
are today: this only chooses the delay of a poll that found its job still running.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from aep_activator.aep.pipeline.backoff import PollSchedule

MIN_SAMPLES = 8
EARLY_Q = 0.05
LATE_Q = 0.99
DENSE = 0.09
FLOOR_SHARE = 0.1
"""No delay is shorter than this share of the schedule's first delay."""


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``ordered`` (sorted, non-empty), linearly interpolated."""
    if not ordered:
        raise ValueError("no values")
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def adaptive_delay(
    age_s: float,
    durations: Sequence[float],
    schedule: PollSchedule,
    *,
    jitter: float = 0.0,
    min_samples: int = MIN_SAMPLES,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next look at a job ``age_s`` old, or ``None`` (too few durations seen)."""
    seen = sorted(d for d in durations if d > 0 and math.isfinite(d))
    if len(seen) < max(1, min_samples):
        return None
    early, late = quantile(seen, EARLY_Q), quantile(seen, LATE_Q)
    if age_s < early:
        delay = early - age_s
    elif age_s < late:
        delay = DENSE * age_s
    else:
        delay = schedule.cap_s
    delay = min(schedule.cap_s, delay, max(0.0, schedule.deadline_s - age_s))
    if jitter:
        delay *= 1 - jitter * (rng or random).random()
    return max(FLOOR_SHARE * schedule.initial_s, delay)

"""Adaptive polls (issue 13): a job's next look, from the durations seen recently for its kind.

Pure arithmetic; the durations come from :class:`aep_activator.aep.coordination.durations.DurationSummary`.
With at least ``min_samples`` durations seen, a poll waits

- until the earliest end it is likely to have, while it is younger than that (few polls while it is
  unlikely to be done): a lower tolerance bound of a log-normal fitted to the durations seen, below
  which at most ``EARLY_Q`` of jobs end, with confidence ``EARLY_CONFIDENCE`` given how few durations
  are known (``exp(mean - k·sd)`` of their logarithms, ``k`` the one-sided normal tolerance factor).
  The jobs that end before it are the ones seen late, so their share must stay under the 5 % that a
  p95 target leaves whatever summary the polls read: a plain prediction bound at 5 % held that share
  only on average over summaries, and with ten durations one summary in eight let more jobs through
  (p95 above 10 % in those runs),
- ``DENSE`` times the job's age from then on (dense polls around its likely end: a job is seen within
  about ``DENSE`` of its duration after it ends), which grows to the configured cap once the job is
  ``cap / DENSE`` old. A job that outlives every duration seen keeps being seen within ``DENSE`` of its
  age until the cap binds: with a summary of a few dozen jobs its tail is poorly known, and a tail job
  costs few extra GETs.

never longer than the schedule's cap nor past its deadline, with the schedule's equal jitter (which
only shortens a delay). With fewer durations it answers ``None`` and the caller keeps the geometric
schedule (``backoff.PollSchedule``). Errors, ``Retry-After`` and deadlines are handled where they
are today: this only chooses the delay of a poll that found its job still running.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from statistics import NormalDist

from aep_activator.aep.pipeline.backoff import PollSchedule

MIN_SAMPLES = 8
EARLY_Q = 0.035
EARLY_CONFIDENCE = 0.85
DENSE = 0.09
FLOOR_SHARE = 0.1
"""No delay is shorter than this share of the schedule's first delay."""


def tolerance_factor(n: int, q: float = EARLY_Q, confidence: float = EARLY_CONFIDENCE) -> float:
    """``k`` such that, with ``confidence``, at most ``q`` of a normal population lies below ``mean - k·sd``
    of ``n`` samples (one-sided; Natrella's approximation, whose confidence is within about three points
    of the one asked from n = 8: tests/unit/test_adaptive_polls.py)."""
    if n < 2:
        return math.inf
    zp, zg = NormalDist().inv_cdf(1 - q), NormalDist().inv_cdf(confidence)
    a = 1 - zg * zg / (2 * (n - 1))
    if a <= 0:
        return math.inf
    b = zp * zp - zg * zg / n
    return (zp + math.sqrt(max(0.0, zp * zp - a * b))) / a


def earliest_end(durations: Sequence[float], q: float = EARLY_Q, confidence: float = EARLY_CONFIDENCE) -> float:
    """A lower tolerance bound of the next duration: at most ``q`` of jobs end earlier, with ``confidence``,
    for a log-normal fitted to ``durations``."""
    logs = [math.log(d) for d in durations]
    if len(logs) < 2:
        return min(durations, default=0.0) * 0.5
    k = tolerance_factor(len(logs), q, confidence)
    return math.exp(statistics.fmean(logs) - k * statistics.stdev(logs))


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
    early = earliest_end(seen)
    delay = early - age_s if age_s < early else DENSE * age_s
    left = max(0.0, schedule.deadline_s - age_s)
    delay = min(schedule.cap_s, delay, left)
    if jitter:
        delay *= 1 - jitter * (rng or random).random()
    # The floor keeps a young job from being polled in a burst; the cap and the deadline still bind it.
    return min(max(FLOOR_SHARE * schedule.initial_s, delay), schedule.cap_s, left)

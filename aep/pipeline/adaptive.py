"""Adaptive polls (issue 13): a job's next look, from the durations seen recently for its kind.

Pure arithmetic; the durations come from :class:`aep_activator.aep.coordination.durations.DurationSummary`.
With at least ``min_samples`` durations seen, a poll waits

- until the earliest end it is likely to have, while it is younger than that (few polls while it is
  unlikely to be done): the lower ``EARLY_Q`` prediction bound of a log-normal fitted to the durations
  seen (``exp(mean - t·sd·√(1 + 1/n))`` of their logarithms, Student's t with n - 1 degrees of
  freedom), so that a summary of only a few jobs, whose shortest duration says little about the next
  job, still waits too long for at most about ``EARLY_Q`` of jobs (the 5th percentile of ten durations
  let one job in ten wait for it, seen up to 60 % late in a bench run),
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
EARLY_Q = 0.05
DENSE = 0.09
FLOOR_SHARE = 0.1
"""No delay is shorter than this share of the schedule's first delay."""


def student_t(q: float, dof: int) -> float:
    """Student's t quantile ``q`` for ``dof`` degrees of freedom (Cornish-Fisher, within 0.01 from dof 5)."""
    z = NormalDist().inv_cdf(q)
    if dof <= 0:
        return math.inf
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def earliest_end(durations: Sequence[float], q: float = EARLY_Q) -> float:
    """The lower ``q`` prediction bound of the next duration, from a log-normal fitted to ``durations``."""
    logs = [math.log(d) for d in durations]
    if len(logs) < 2:
        return min(durations, default=0.0) * 0.5
    n = len(logs)
    bound = statistics.fmean(logs) - student_t(1 - q, n - 1) * statistics.stdev(logs) * math.sqrt(1 + 1 / n)
    return math.exp(bound)


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
    delay = min(schedule.cap_s, delay, max(0.0, schedule.deadline_s - age_s))
    if jitter:
        delay *= 1 - jitter * (rng or random).random()
    return max(FLOOR_SHARE * schedule.initial_s, delay)

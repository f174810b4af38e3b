"""Counters and indexes in Redis that the metrics are read from, the same whichever worker did the work.

Workers never make an extra round trip for a metric: a step's counters travel in the change it leaves
with (``Change.metrics``) and ``run_leave.lua`` adds them in the same script (as ``HINCRBY`` would); the
watchdog's pop counts its recoveries, and the status index is kept by the scripts that change a status.
A scrape (``read``) is one pipeline, whatever the number of runs in flight: nothing is scanned.

Key layout (relative to the prefix; keys.py)::

    metrics             HASH  field -> integer count; the fields below (labels joined by ``|``)
    status:{status}     ZSET  run id -> created_at for an open status (queued, running, waiting), or
                              the time it ended for a terminal one (trimmed to the record's lifetime)

Fields of ``metrics`` (every label comes from a bounded set: step names, route templates, methods,
HTTP statuses, outcomes; never an id)::

    req|{route}|{method}|{status}   AEP requests answered ``status`` (or ``error``: no answer)
    req_ms|{route}                  their summed duration in ms
    req_le|{route}|{le}             requests whose duration fell in that bucket (not cumulative)
    step_ms|{step}, step_le|{step}|{le}   how long a run spent at a step, waits included, per step done
    exec|{step}|{outcome}           step executions that left: done | wait | failed | cancelled
    adopt|{step}                    AEP jobs adopted after a POST whose answer was lost
    conflict                        AEP answers "Run already going on" that made a run wait
    recover|{kind}                  watchdog re-publications: rewake (lost wake-up) | recover (dead step)
    finish|{status}                 runs that ended, by terminal status
    callback|{outcome}              completion callbacks: delivered | retried | failed
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis

from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.replies import as_text

REQUEST_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STEP_BUCKETS_S = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
                  28800.0)  # fmt: skip
OPEN_STATUSES = ("queued", "running", "waiting")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
SEP = "|"


def bucket_label(value_s: float, bounds: Sequence[float]) -> str:
    """The ``le`` of the smallest bucket holding ``value_s`` (``+Inf`` past the last bound)."""
    i = bisect.bisect_left(bounds, value_s)
    return "+Inf" if i >= len(bounds) else _le(bounds[i])


def _le(bound: float) -> str:
    return repr(float(bound))


class StepMeter:
    """The counters one step execution adds, as ``HINCRBY`` increments for ``Change.metrics``."""

    def __init__(self) -> None:
        self.fields: Counter[str] = Counter()

    def request(self, route: str, method: str, status: str, duration_s: float) -> None:
        self.fields[SEP.join(("req", route, method, status))] += 1
        self.fields[f"req_ms|{route}"] += round(duration_s * 1000)
        self.fields[f"req_le|{route}|{bucket_label(duration_s, REQUEST_BUCKETS_S)}"] += 1

    def step_done(self, step: str, duration_s: float) -> None:
        self.fields[f"step_ms|{step}"] += round(max(0.0, duration_s) * 1000)
        self.fields[f"step_le|{step}|{bucket_label(max(0.0, duration_s), STEP_BUCKETS_S)}"] += 1

    def execution(self, step: str, outcome: str) -> None:
        self.fields[f"exec|{step}|{outcome}"] += 1

    def adoption(self, step: str) -> None:
        self.fields[f"adopt|{step}"] += 1

    def conflict(self) -> None:
        self.fields["conflict"] += 1

    def increments(self) -> dict[str, int]:
        return {k: v for k, v in self.fields.items() if v}


@dataclass(frozen=True)
class Histogram:
    """One labelled histogram: cumulative ``(le, count)`` pairs ending at ``+Inf``, and the sum in seconds."""

    buckets: list[tuple[str, int]]
    sum_s: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1] if self.buckets else 0


@dataclass
class Snapshot:
    """Everything a scrape shows except the quotas (read through ``QuotaLedger.usage``)."""

    now: float
    counters: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    oldest_open_created_at: float | None = None
    carriers_total: int = 0
    carriers_future: int = 0
    oldest_due: float | None = None
    queue_length: int = 0

    def labelled(self, kind: str) -> dict[tuple[str, ...], int]:
        """Counters of one ``kind`` (``req``, ``exec``, …) by their label values."""
        out: dict[tuple[str, ...], int] = {}
        for name, value in self.counters.items():
            head, _, rest = name.partition(SEP)
            if head == kind:
                out[tuple(rest.split(SEP)) if rest else ()] = value
        return out

    def histograms(self, kind: str, bounds: Sequence[float]) -> dict[str, Histogram]:
        """``req`` or ``step`` histograms by their one label (route or step)."""
        per: dict[str, Counter[str]] = {}
        for (label, le), n in self.labelled(f"{kind}_le").items():
            per.setdefault(label, Counter())[le] += n
        sums = {label[0]: ms for label, ms in self.labelled(f"{kind}_ms").items()}
        out: dict[str, Histogram] = {}
        for label in sorted(set(per) | set(sums)):
            counts = per.get(label, Counter())
            running, cumulative = 0, []
            for le in [*(_le(b) for b in bounds), "+Inf"]:
                running += counts.get(le, 0)
                cumulative.append((le, running))
            out[label] = Histogram(cumulative, sums.get(label, 0) / 1000)
        return out


class MetricsStore:
    """Reads the counters and indexes of one key prefix (the writers are the ledger's scripts)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._r = client
        self._keys = keys

    def read(self, *, queue_keys: Iterable[str] = (), recent_s: float = 86400.0) -> Snapshot:
        """One pipeline: the counters, runs per status (terminal: ended within ``recent_s``), the oldest
        open run, the carriers (future and overdue) and the broker queue's length."""
        k = self._keys
        queue_keys = list(queue_keys)
        pipe = self._r.pipeline(transaction=True)
        pipe.time()
        pipe.hgetall(k.metrics)
        for status in OPEN_STATUSES:
            pipe.zcard(k.status(status))
            pipe.zrange(k.status(status), 0, 0, withscores=True)
        pipe.zcard(k.carriers)
        pipe.zrange(k.carriers, 0, 0, withscores=True)
        for key in queue_keys:
            pipe.llen(key)
        answers = pipe.execute()
        seconds, micros = answers[0]
        now = float(seconds) + micros / 1e6
        snap = Snapshot(now=now, counters={as_text(f): int(v) for f, v in answers[1].items()})
        i = 2
        oldest: list[float] = []
        for status in OPEN_STATUSES:
            snap.runs[status] = int(answers[i])
            if answers[i + 1]:
                oldest.append(float(answers[i + 1][0][1]))
            i += 2
        snap.carriers_total = int(answers[i])
        first = answers[i + 1]
        i += 2
        snap.queue_length = sum(int(n) for n in answers[i:])
        snap.oldest_open_created_at = min(oldest) if oldest else None
        snap.oldest_due = float(first[0][1]) if first and float(first[0][1]) <= now else None
        # Terminal runs that ended within `recent_s`, and carriers due in the future: a second, small read.
        pipe = self._r.pipeline(transaction=False)
        for status in TERMINAL_STATUSES:
            pipe.zcount(k.status(status), now - recent_s, "+inf")
        pipe.zcount(k.carriers, f"({now}", "+inf")
        *recent, future = pipe.execute()
        for status, n in zip(TERMINAL_STATUSES, recent, strict=True):
            snap.runs[status] = int(n)
        snap.carriers_future = int(future)
        return snap

    def ids_by_status(self, status: str, limit: int) -> list[str]:
        """The newest ``limit`` run ids of one status (open: by creation; terminal: by end)."""
        return [as_text(x) for x in self._r.zrevrange(self._keys.status(status), 0, max(0, limit - 1))]

    def incr(self, field_name: str, by: int = 1) -> None:
        """One counter outside a step (the callback task): its own round trip."""
        self._r.hincrby(self._keys.metrics, field_name, by)


def age_s(now: float, since: float | None) -> float:
    return 0.0 if since is None or math.isnan(since) else max(0.0, now - since)

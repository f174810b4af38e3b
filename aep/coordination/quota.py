"""The quota ledger: a slot is spent *at send*, in the same atomic write that records the POST's intent.

AEP allows very few runs: 20 ad-hoc activations a day per org, 2 on-demand segment jobs a day per
sandbox (and 50 or 100 a year). One overshoot burns a scarce quota, so this is a ledger, not a rate
limit, and it never lets a slot lapse while the POST that used it may have been accepted:

1. ``spend`` (inside ``run_intent.lua``, atomically with the intent) takes one slot of every bucket the
   POST counts against, all or nothing, and refuses when any is full;
2. the slot stays spent when AEP accepted the POST *or its outcome is unknown*;
3. ``refund`` gives it back only on proof that AEP did not accept the POST (a 4xx or 429 answer, a
   refused connection, or AEP's own lists showing no such job: ``aep/pipeline/steps/looks.py``).

There is no reservation to expire: a worker that dies between sending and recording leaves a spent
slot and an intent, and the step that picks the run up again looks before it creates.

**Windows** come from the server's clock: scripts read Redis ``TIME`` (tests inject a clock through
ARGV), so every host counts in the same window whatever its own clock says. A daily window is a
multiple of ``length_s`` (the UTC day by default); a yearly window opens on a month and day (the
contract anniversary, 00:00 UTC). AEP's clock may still differ from Redis's, so a slot spent within
``edge_s`` of a window boundary is counted in both windows that AEP might count it in.

Key layout (keys.py; percent-encoded name and scope)::

    {prefix}quota:{name}:{scope}:{window_start}:committed   SET  holders that spent a slot
    {prefix}quota:{name}:{scope}:{window_start}:pending     SET  those whose POST outcome is not yet known

Both expire one window after their window ends.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.replies import as_text
from aep_activator.aep.coordination.scripts import load_script

DAY_S = 86400


@dataclass(frozen=True)
class DailyWindow:
    """Windows aligned to multiples of ``length_s`` since the epoch: the UTC day by default."""

    length_s: int = DAY_S

    def containing(self, t: float) -> tuple[int, int]:
        start = math.floor(t / self.length_s) * self.length_s
        return start, start + self.length_s


@dataclass(frozen=True)
class YearlyWindow:
    """Windows of one year opening on ``month``-``day`` at 00:00 UTC (29 February is refused)."""

    month: int = 1
    day: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.day <= calendar.monthrange(2023, self.month)[1]:
            raise ValueError(f"{self.month:02d}-{self.day:02d} is not a day that exists every year")

    def _opening(self, year: int) -> int:
        return int(datetime(year, self.month, self.day, tzinfo=UTC).timestamp())

    def containing(self, t: float) -> tuple[int, int]:
        year = datetime.fromtimestamp(t, UTC).year
        start = self._opening(year)
        if start > t:
            year -= 1
            start = self._opening(year)
        return start, self._opening(year + 1)


Window = DailyWindow | YearlyWindow


@dataclass(frozen=True)
class QuotaSpec:
    """One quota of one scope: ``name`` (e.g. ``segment_jobs``), ``scope`` (a sandbox or the org), its limit."""

    name: str
    scope: str
    limit: int
    window: Window
    line: bool = False
    """Runs spend this quota in order (its line: schedules first, then first come, first served)."""


@dataclass(frozen=True)
class Bucket:
    """One window of one quota, as the scripts see it."""

    spec: QuotaSpec
    start: int
    end: int
    key: str
    line: str = ""

    def script_args(self) -> list[str | int]:
        return [self.key, self.spec.limit, self.start, self.end, self.line]


@dataclass(frozen=True)
class QuotaUsage:
    """One quota's current window. ``used`` counts spent slots, ``pending`` those of them whose POST
    outcome is not known yet."""

    name: str
    scope: str
    limit: int
    used: int
    pending: int
    window_start: int
    reset_at: float  # epoch s at which the next window opens

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class SpendResult:
    ok: bool
    bucket: Bucket | None = None
    """The first full bucket when refused."""
    used: int = 0
    ahead: int = 0
    """Refused with room left: this many runs ahead in line get it first."""


class QuotaLedger:
    """Spend, refund and read calendar-window quotas in Redis; safe to share between processes and hosts."""

    def __init__(self, client: redis.Redis, keys: Keys, *, edge_s: float = 60.0) -> None:
        self._r = client
        self._keys = keys
        self.edge_s = edge_s
        self._spend = load_script(client, "quota_spend")
        self._refund = load_script(client, "quota_refund")
        self._turn = load_script(client, "quota_turn")

    def buckets(self, specs: Sequence[QuotaSpec], now: float) -> list[Bucket]:
        """Every bucket a POST at ``now`` counts against: each spec's window, and its neighbour when
        ``now`` is within ``edge_s`` of a boundary (AEP's clock may put the POST there)."""
        out: list[Bucket] = []
        for spec in specs:
            windows = {spec.window.containing(now)}
            windows.add(spec.window.containing(now - self.edge_s))
            windows.add(spec.window.containing(now + self.edge_s))
            out += [self._bucket(spec, start, end) for start, end in sorted(windows)]
        return out

    def _bucket(self, spec: QuotaSpec, start: int, end: int) -> Bucket:
        line = self._keys.line(spec.name, spec.scope) if spec.line else ""
        return Bucket(spec, start, end, self._keys.quota(spec.name, spec.scope, start), line)

    def spend(self, holder: str, buckets: Sequence[Bucket], *, now: float | None = None) -> SpendResult:
        """Take one slot of every bucket for ``holder``, or none. Idempotent per holder.

        Outside a step (tests, tools): steps spend through ``RunLedger.intent``, with the intent.
        """
        _check_holder(holder)
        flat = [x for b in buckets for x in b.script_args()]
        answer = self._spend(args=[holder, self.edge_s, "" if now is None else repr(now), *flat])
        return self._result(answer, buckets)

    def in_turn(self, holder: str, buckets: Sequence[Bucket]) -> bool:
        """Whether ``holder`` could spend now, read without writing (the spend script decides; this only
        lets a run out of turn wait without first taking locks that the run whose turn it is needs)."""
        _check_holder(holder)
        flat = [x for b in buckets for x in b.script_args()]
        return int(str(self._turn(args=[holder, *flat]))) == 1  # one round trip (quota_turn.lua)

    def _result(self, answer: list[object], buckets: Sequence[Bucket]) -> SpendResult:
        verdict = as_text(answer[0])
        if verdict == "ok":
            return SpendResult(True)
        if verdict in ("quota", "line"):
            return SpendResult(False, buckets[int(str(answer[1])) - 1], int(str(answer[2])),
                               int(str(answer[3])) if verdict == "line" else 0)  # fmt: skip
        raise ClockSkew(f"the buckets do not contain the server's time ({verdict})")

    def refund(self, holder: str, keys: Sequence[str]) -> None:
        """Give ``holder``'s slot back in each committed-set key (on proof the POST was not accepted)."""
        _check_holder(holder)
        if keys:
            self._refund(keys=list(keys), args=[holder])

    def usage(self, spec: QuotaSpec, now: float) -> QuotaUsage:
        """The window of ``spec`` containing ``now`` (read-only)."""
        start, end = spec.window.containing(now)
        committed = self._keys.quota(spec.name, spec.scope, start)
        pipe = self._r.pipeline(transaction=True)  # both counts from one instant
        pipe.scard(committed)
        pipe.scard(pending_key(committed))
        used, pending = pipe.execute()
        return QuotaUsage(spec.name, spec.scope, spec.limit, int(used), int(pending), start, float(end))

    def admission_lines(self, quotas: Sequence[Sequence[QuotaSpec]], now: float) -> list[dict[str, object]]:
        """For ``run_create.lua``: one line per quota a run will spend (its first, ordered spec), with the
        current windows' committed sets of it and of the quota's yearly spec, if any."""
        out: list[dict[str, object]] = []
        for specs in quotas:
            daily, *rest = specs
            start, end = daily.window.containing(now)
            line: dict[str, object] = {
                "name": daily.name, "line": self._keys.line(daily.name, daily.scope),
                "committed": self._keys.quota(daily.name, daily.scope, start), "limit": daily.limit,
                "window_end": end, "window_s": end - start,
            }  # fmt: skip
            if rest:
                ystart, yend = rest[0].window.containing(now)
                line["yearly"] = {"committed": self._keys.quota(rest[0].name, rest[0].scope, ystart),
                                  "limit": rest[0].limit, "window_end": yend}  # fmt: skip
            out.append(line)
        return out

    def server_time(self) -> float:
        seconds, micros = self._r.time()
        return float(seconds) + micros / 1e6


class ClockSkew(RuntimeError):
    """The buckets a caller computed do not contain the server's time: recompute them from it."""


def pending_key(committed_key: str) -> str:
    return committed_key.removesuffix(":committed") + ":pending"


def _check_holder(holder: str) -> None:
    if not holder:
        raise ValueError("holder must be a non-empty id")


ClockFn = Callable[[], float]

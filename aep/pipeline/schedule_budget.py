"""What the enabled schedules alone would spend of each quota, before any producer run spends a slot
(``aep-activator schedules check``): per day, per contract year, and against the share held back for
schedules.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from croniter import croniter_range

from aep_activator.aep.coordination.quota import YearlyWindow
from aep_activator.aep.pipeline.cron import fires_on
from aep_activator.aep.pipeline.scopes import DEFAULT_SANDBOX, Quota, QuotaLimits

if TYPE_CHECKING:
    from aep_activator.aep.pipeline.schedules import ScheduleFile


def quota_warnings(
    schedules: ScheduleFile[Any],
    limits: QuotaLimits,
    *,
    now: dt.datetime,
    days: int = 7,
    default_sandbox: str | None = None,
) -> list[str]:
    """What enabled schedules alone would overspend, before any producer run spends a slot.

    Every firing is one run and spends one ad-hoc activation (per org); a firing whose request has
    ``segment_job`` true also spends one on-demand segment job of its sandbox (the request's
    ``sandbox``, else ``default_sandbox``), daily and yearly. So, for today and the next ``days - 1``
    UTC days, each day on which the firings exceed a daily limit; each sandbox whose firings from
    ``now`` to the end of the contract year exceed its yearly limit (before counting what this year
    already spent); and, once, each quota whose firings on a day exceed the share held back for
    schedules (``QUOTA_RESERVED_FOR_SCHEDULES``): the rest compete with producer runs. Runs beyond a
    quota wait for its next window (``on_quota="wait"``) or fail.
    """
    warnings = []
    now = now.astimezone(dt.UTC)
    sandbox_of = {s.name: getattr(s.request, "sandbox", None) or default_sandbox for s in schedules.enabled}
    beyond_share: dict[str, tuple[dt.date, int, int]] = {}
    for day in (now.date() + dt.timedelta(days=i) for i in range(days)):
        adhoc = {s.name: k for s in schedules.enabled if (k := len(fires_on(s.parsed_cron(), day)))}
        by_sandbox: dict[str | None, dict[str, int]] = {}
        for s in schedules.enabled:
            if s.name in adhoc and s.spends_segment_job:
                by_sandbox.setdefault(sandbox_of[s.name], {})[s.name] = adhoc[s.name]
        checks: list[tuple[Quota, str, dict[str, int], str]] = [
            (Quota.SEGMENT_JOBS, "segment-job", counts, "sandbox" + (f" {sb}" if sb else ""))
            for sb, counts in sorted(by_sandbox.items(), key=lambda kv: kv[0] or "")
        ]
        checks.append((Quota.ADHOC, "ad-hoc activation", adhoc, "org"))
        for quota, label, counts, scope in checks:
            total, limit = sum(counts.values()), limits.daily(quota)
            if total > limit:
                detail = ", ".join(f"{n} x{k}" if k > 1 else n for n, k in counts.items())
                warnings.append(
                    f"{total} {label} schedule firings on {day.isoformat()} against a quota of {limit} "
                    f"per {scope} per day ({detail})"
                )
            held = limits.reserved_for_schedules.get(quota.value, 0)
            if held and total > held and quota.value not in beyond_share:
                beyond_share[quota.value] = (day, total, held)
    for name, (first_day, needed, held) in beyond_share.items():
        warnings.append(
            f"{needed} {name} schedule firings on {first_day.isoformat()}, but QUOTA_RESERVED_FOR_SCHEDULES holds "
            f"back only {held}: the other {needed - held} compete with producer runs for the rest of the day's quota"
        )
    # The rest of this contract year, then the whole next one (which a daily schedule outgrows in any case).
    year = YearlyWindow(*limits.year_start)
    _, this_end = year.containing(now.timestamp())
    _, next_end = year.containing(this_end)
    renews = dt.datetime.fromtimestamp(this_end, dt.UTC).date().isoformat()
    for start, end, what in ((now.timestamp(), this_end, "before the contract year renews on"),
                             (this_end, next_end, "in the contract year that opens on")):  # fmt: skip
        yearly = _segment_firings(schedules, sandbox_of, start, end)
        found = []
        for sb, counts in sorted(yearly.items(), key=lambda kv: kv[0] or ""):
            limit = limits.segment_jobs_per_year[limits.sandbox_type(sb)]
            if (total := sum(counts.values())) > limit:
                detail = ", ".join(f"{n} x{k}" for n, k in counts.items())
                found.append(
                    f"{total} segment-job schedule firings in sandbox {sb or DEFAULT_SANDBOX} {what} {renews}, "
                    f"against a yearly limit of {limit} ({limits.sandbox_type(sb)}) ({detail})"
                )
        if found:
            warnings.extend(found)
            break
    return warnings


def _segment_firings(
    schedules: ScheduleFile[Any], sandbox_of: dict[str, str | None], start: float, end: float
) -> dict[str | None, dict[str, int]]:
    """Per sandbox, per schedule: the firings in [start, end) of the enabled schedules that run a segment job."""
    out: dict[str | None, dict[str, int]] = {}
    first = dt.datetime.fromtimestamp(start, dt.UTC)
    last = dt.datetime.fromtimestamp(end, dt.UTC) - dt.timedelta(seconds=1)
    for s in schedules.enabled:
        if s.spends_segment_job:
            times = croniter_range(first, last, s.parsed_cron().expr, day_or=False)
            n = sum(1 for t in times if t.timestamp() >= start)
            if n:
                out.setdefault(sandbox_of[s.name], {})[s.name] = n
    return out

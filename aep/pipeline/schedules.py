"""The schedule file (``config/schedules.toml``): activations fired by celery beat on a UTC cron.

File shape (one ``[[schedule]]`` table per entry; unknown keys are errors)::

    [[schedule]]
    name = "daily-audience"          # unique; letters, digits, ``_ . -``; part of each firing's key
    cron = "0 6 * * *"               # minute hour day-of-month month day-of-week, always UTC
    enabled = true                   # optional, default true
    [schedule.request]               # an activation request, exactly as the producer API takes it
    ...

This layer imports no Celery (tests/unit/test_layout.py), so the request model is a parameter
(``workers/beat.py`` passes ``ActivationRequest``), and fire times come from ``croniter`` with
``day_or=False``: Celery's ``crontab`` semantics, under which a day must match *both* day-of-month
and day-of-week when both are restricted (classic cron ORs them). Beat fires with Celery's
``crontab`` built from the same five fields; tests/unit/test_cron.py checks, minute by minute over a
year, that the two read every accepted form alike.

**Accepted cron syntax** — the forms croniter and Celery read the same way, nothing more:

- five fields separated by spaces: minute ``0-59``, hour ``0-23``, day-of-month ``1-31``, month
  ``1-12`` or ``jan``-``dec``, day-of-week ``0-6`` or ``sun``-``sat`` (0 is Sunday); names are three
  letters, in any case;
- each field a comma-separated list of items: ``*``, a value (``5``), a range (``1-5``), or a step
  on ``*`` or on a range (``*/15``, ``0-30/10``). A range whose first end is the larger wraps around
  the field (``22-2`` is 22, 23, 0, 1, 2; ``fri-mon`` is Friday to Monday).

Everything else is an error naming the schedule and the field, in particular the forms on which the
two libraries disagree or that one of them lacks: ``7`` for Sunday, full names (``sunday``), a step
on a single value (``5/15``) or on a wrapping range (``22-2/2``), a range with equal ends (``5-5``:
croniter reads the whole cycle, Celery one value), ``L``, ``W``, ``#``, ``?``, ``H``, ``R``,
``@daily``, seconds or year fields, and a date that never occurs (``30 2``, Feb 30).

Errors raise :class:`ScheduleError`, whose ``str()`` names the file, the schedule and the field path.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar, cast

from croniter import croniter, croniter_range
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from aep_activator.aep.coordination.quota import YearlyWindow
from aep_activator.aep.pipeline.scopes import DEFAULT_SANDBOX, Quota, QuotaLimits

R = TypeVar("R", bound=BaseModel)
ScheduleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (field, lowest, highest, names from the lowest up), in the order of a cron expression.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day_of_month", 1, 31, ()),
    ("month_of_year", 1, 12, _MONTHS),
    ("day_of_week", 0, 6, _WEEKDAYS),
)
_ITEM = re.compile(r"(?:(?P<star>\*)|(?P<first>[0-9]+|[A-Za-z]+)(?:-(?P<last>[0-9]+|[A-Za-z]+))?)(?:/(?P<step>.*))?")


class ScheduleError(ValueError):
    """The schedule file cannot be used. ``str()`` names the file and every problem, one a line."""


@dataclass(frozen=True)
class Cron:
    """A validated 5-field UTC cron expression in the accepted syntax (see the module docstring)."""

    expr: str

    def fields(self) -> dict[str, str]:
        """The expression's fields by Celery ``crontab`` keyword, for ``crontab(**cron.fields())``."""
        return dict(zip((f[0] for f in _FIELDS), self.expr.split(), strict=True))


def parse_cron(expr: str) -> Cron:
    """Check ``expr`` against the accepted syntax; ``ValueError`` names the bad field.

    This only *refuses*: croniter expands the fields and does the time arithmetic.
    """
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    for (field, lo, hi, names), spec in zip(_FIELDS, parts, strict=True):
        for item in spec.split(","):
            try:
                _check_item(item, lo, hi, names)
            except ValueError as exc:
                where = f"{field} field {spec!r}: " + (f"{item!r}: " if item != spec else "")
                raise ValueError(f"{where}{exc}") from None
    cron = Cron(" ".join(parts))
    croniter.expand(cron.expr)  # every accepted form expands (tests/unit/test_cron.py); a bug here is loud
    try:  # strict: a day-of-month that no listed month has (Celery's crontab refuses it too)
        croniter.expand(cron.expr, strict=True)
    except ValueError:
        raise ValueError(f"day_of_month field {parts[2]!r}: never occurs in month_of_year {parts[3]!r}") from None
    return cron


def _check_item(item: str, lo: int, hi: int, names: tuple[str, ...]) -> None:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise ValueError("not '*', a value, a range like 1-5, or a step like */15")
    step = match["step"]
    if step is not None and not (re.fullmatch("[0-9]+", step) and int(step) > 0):
        raise ValueError(f"step {step!r} must be a positive number")
    if match["star"]:
        return
    first = _value(match["first"], lo, hi, names)
    if match["last"] is None:
        if step is not None:
            raise ValueError(f"a step needs '*' or a range before it, e.g. */{step}")
        return
    last = _value(match["last"], lo, hi, names)
    if first == last:
        raise ValueError(f"a range needs two different ends; write {match['first']}")
    if first > last and step is not None:
        raise ValueError("a step on a wrapping range is ambiguous; write two ranges")


def _value(token: str, lo: int, hi: int, names: tuple[str, ...]) -> int:
    if token.isdigit():
        if not lo <= int(token) <= hi:
            raise ValueError(f"{token} is outside {lo}-{hi}" + (" (0 is Sunday)" if names is _WEEKDAYS else ""))
        return int(token)
    if token.lower() in names:
        return lo + names.index(token.lower())
    if names:
        raise ValueError(f"{token!r} is not a number or a three-letter name ({names[0]}-{names[-1]})")
    raise ValueError(f"{token!r} is not a number")


class Schedule(BaseModel, Generic[R]):
    """One scheduled activation. ``request`` may not carry ``idempotency_key`` or ``started_by``:
    each firing gets ``schedule:<name>:<slot>`` and ``schedule:<name>`` (see ``workers/beat.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ScheduleName
    cron: str
    enabled: bool = True
    request: R

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return parse_cron(value).expr

    @field_validator("request")
    @classmethod
    def _no_fixed_identity(cls, value: R) -> R:
        for field in ("idempotency_key", "started_by"):
            if field in value.model_fields_set:
                raise ValueError(f"{field}: not allowed in a schedule; each firing sets its own")
        return value

    def parsed_cron(self) -> Cron:
        return parse_cron(self.cron)

    @property
    def spends_segment_job(self) -> bool:
        """Whether a firing runs an on-demand segment job (the request's ``segment_job``)."""
        return bool(getattr(self.request, "segment_job", False))


class ScheduleFile(BaseModel, Generic[R]):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: list[Schedule[R]] = Field(default_factory=list)

    @property
    def enabled(self) -> list[Schedule[R]]:
        return [s for s in self.schedule if s.enabled]


def parse_schedules(text: str, request_model: type[R], source: str = "<schedules>") -> ScheduleFile[R]:
    """Parse and validate schedule-file text, each request as ``request_model``.

    Raises :class:`ScheduleError` naming every problem: TOML syntax (with its line), unknown
    fields, duplicate names, bad cron fields and invalid requests (by field path).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{source}: TOML syntax error: {exc}") from None
    problems = _duplicate_names(data)
    # A runtime parametrisation of the generic model; mypy cannot follow a type held in a variable.
    model = cast("type[ScheduleFile[R]]", ScheduleFile[request_model])  # type: ignore[valid-type]
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        problems = [_describe(err, data) for err in errors] + problems
    if problems:
        raise ScheduleError(f"{source}: invalid schedule file:\n  " + "\n  ".join(problems))
    return parsed


def load_schedules(path: str | Path, request_model: type[R]) -> ScheduleFile[R]:
    """Read and validate the schedule file at ``path`` (see :func:`parse_schedules`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read the schedule file: {exc.strerror}") from None
    return parse_schedules(text, request_model, str(path))


def _duplicate_names(data: dict[str, Any]) -> list[str]:
    entries = data.get("schedule")
    if not isinstance(entries, list):
        return []
    names = Counter(e.get("name") for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str))
    return [f"schedule {n!r}: name used {k} times; names must be unique" for n, k in names.items() if k > 1]


def _describe(err: Any, data: dict[str, Any]) -> str:
    loc = list(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and len(loc) in (1, 3):
        allowed = ScheduleFile.model_fields if len(loc) == 1 else Schedule.model_fields
        msg = f"unknown field (allowed: {', '.join(allowed)})"
    where = ""
    if len(loc) >= 2 and loc[0] == "schedule" and isinstance(loc[1], int):
        entry = data["schedule"][loc[1]]
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"schedule {name!r}: " if isinstance(name, str) else f"schedule #{loc[1] + 1}: "
        loc = loc[2:]
    path = ".".join(str(p) for p in loc)
    return f"{where}{path}: {msg}" if path else f"{where}{msg}"


# --- fire times (UTC, minute resolution; croniter with Celery's day semantics) ------------------------


def fires_on(cron: Cron, day: dt.date) -> list[dt.datetime]:
    """Every fire time of ``cron`` on the UTC date ``day``, ascending."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    last = start + dt.timedelta(days=1, minutes=-1)
    return list(croniter_range(start, last, cron.expr, day_or=False))


def next_fire_times(cron: Cron | Schedule[Any], n: int, now: dt.datetime) -> list[dt.datetime]:
    """The next ``n`` fire times strictly after ``now`` (aware UTC datetimes)."""
    cron = cron.parsed_cron() if isinstance(cron, Schedule) else cron
    times = croniter(cron.expr, now.astimezone(dt.UTC), day_or=False)
    return [times.get_next(dt.datetime) for _ in range(n)]


def previous_fire_time(cron: Cron, now: dt.datetime) -> dt.datetime:
    """The latest fire time at or before ``now``: the cron slot a firing at ``now`` belongs to."""
    # croniter's get_prev is strictly before its start; fire times are whole minutes, so starting
    # at the next whole minute makes a fire time at ``now``'s own minute count.
    after = now.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return croniter(cron.expr, after, day_or=False).get_prev(dt.datetime)


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

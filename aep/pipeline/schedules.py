"""The schedule file (``config/schedules.toml``): activations fired by celery beat on a UTC cron.

File shape (one ``[[schedule]]`` table per entry; unknown keys are errors)::

    [[schedule]]
    name = "daily-audience"          # unique; letters, digits, ``_ . -``; part of each firing's key
    cron = "0 6 * * *"               # minute hour day-of-month month day-of-week, always UTC
    enabled = true                   # optional, default true
    [schedule.request]               # an activation request, exactly as the producer API takes it
    ...

``config/`` imports neither Celery nor ``aep`` (tests/unit/test_layout.py), so the request model is a
parameter (``workers/beat.py`` passes ``ActivationRequest``) and cron expressions are parsed here.
The parser accepts a strict subset of Celery's ``crontab`` syntax — numbers, ``*``, ranges (a
reversed range wraps), ``/step``, lists, and names for months and weekdays — and a test checks
that it expands every form exactly as Celery does. Celery semantics apply: when both day-of-month
and day-of-week are restricted, a day must match *both* (classic cron ORs them).

Errors raise :class:`ScheduleError`, whose ``str()`` names the file, the schedule and the field path.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections import Counter
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

R = TypeVar("R", bound=BaseModel)
ScheduleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
# How far a cron search looks: Feb 29 on a given weekday recurs within 28 years.
_SEARCH_DAYS = 366 * 29
_MONTHS = {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"])}
_WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_DAYS = {d[:3]: i for i, d in enumerate(_WEEKDAYS)} | {d: i for i, d in enumerate(_WEEKDAYS)}
# (field, lowest, highest, names), in the order of a cron expression.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day_of_month", 1, 31, {}),
    ("month_of_year", 1, 12, _MONTHS),
    ("day_of_week", 0, 6, _DAYS),  # 0 = Sunday
)


class ScheduleError(ValueError):
    """The schedule file cannot be used. ``str()`` names the file and every problem, one a line."""


@dataclass(frozen=True)
class Cron:
    """A parsed 5-field UTC cron expression: the set of values each field allows."""

    expr: str
    minute: frozenset[int]
    hour: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]
    day_of_week: frozenset[int]

    def fields(self) -> dict[str, str]:
        """The expression's fields by Celery ``crontab`` keyword, for ``crontab(**cron.fields())``."""
        return dict(zip((f[0] for f in _FIELDS), self.expr.split(), strict=True))


def parse_cron(expr: str) -> Cron:
    """Parse a 5-field cron expression; ``ValueError`` names the bad field."""
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    sets = {}
    for (field, lo, hi, names), spec in zip(_FIELDS, parts, strict=True):
        try:
            sets[field] = frozenset().union(*(_expand(item, lo, hi, names) for item in spec.split(",")))
        except ValueError as exc:
            raise ValueError(f"{field} field {spec!r}: {exc}") from None
    return Cron(expr=" ".join(parts), **sets)


def _expand(item: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    body, slash, step_text = item.partition("/")
    if slash and not (step_text.isdigit() and int(step_text) > 0):
        raise ValueError(f"step {step_text!r} must be a positive number")
    step = int(step_text) if slash else 1
    if body == "*":
        return set(range(lo, hi + 1, step))
    if "-" in body:
        first, last = (_value(v, lo, hi, names) for v in body.split("-", 1))
        if first <= last:
            return set(range(first, last + 1, step))
        if slash:
            raise ValueError("a step on a wrapping range is ambiguous; write two ranges")
        return set(range(first, hi + 1)) | set(range(lo, last + 1))  # e.g. 22-2: 22, 23, 0, 1, 2
    if slash:
        raise ValueError(f"{item!r}: a step needs '*' or a range before it, e.g. */{step_text}")
    return {_value(body, lo, hi, names)}


def _value(token: str, lo: int, hi: int, names: dict[str, int]) -> int:
    if token.isdigit():
        if not lo <= int(token) <= hi:
            raise ValueError(f"{token} is outside {lo}-{hi}")
        return int(token)
    if token.lower() in names:
        return names[token.lower()]
    raise ValueError(f"{token!r} is not a number" + (" or a name" if names else ""))


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


# --- cron arithmetic (UTC, minute resolution) -------------------------------------------------------


def fires_on(cron: Cron, day: dt.date) -> list[dt.datetime]:
    """Every fire time of ``cron`` on the UTC date ``day``, ascending."""
    weekday = day.isoweekday() % 7  # cron counts Sunday as 0
    if day.month not in cron.month_of_year or day.day not in cron.day_of_month or weekday not in cron.day_of_week:
        return []
    slots = product(sorted(cron.hour), sorted(cron.minute))
    return [dt.datetime.combine(day, dt.time(h, m), dt.UTC) for h, m in slots]


def next_fire_times(cron: Cron | Schedule[Any], n: int, now: dt.datetime) -> list[dt.datetime]:
    """The next ``n`` fire times strictly after ``now`` (aware UTC datetimes)."""
    cron = cron.parsed_cron() if isinstance(cron, Schedule) else cron
    now = now.astimezone(dt.UTC)
    out: list[dt.datetime] = []
    day = now.date()
    for _ in range(_SEARCH_DAYS):
        out += [t for t in fires_on(cron, day) if t > now][: n - len(out)]
        if len(out) >= n:
            break
        day += dt.timedelta(days=1)
    return out


def previous_fire_time(cron: Cron, now: dt.datetime) -> dt.datetime:
    """The latest fire time at or before ``now``: the cron slot a firing at ``now`` belongs to."""
    now = now.astimezone(dt.UTC)
    day = now.date()
    for _ in range(_SEARCH_DAYS):
        past = [t for t in fires_on(cron, day) if t <= now]
        if past:
            return past[-1]
        day -= dt.timedelta(days=1)
    raise ValueError(f"cron {cron.expr!r} never fired in the {_SEARCH_DAYS} days before {now:%Y-%m-%d}")


def quota_warnings(
    schedules: ScheduleFile[Any], *, segment_jobs_per_day: int, adhoc_per_day: int, now: dt.datetime, days: int = 7
) -> list[str]:
    """Days (UTC, today and the next ``days - 1``) on which enabled schedules alone exceed a quota.

    Every firing is one run and spends one ad-hoc activation; a firing whose request has
    ``segment_job`` true also spends one on-demand segment job. Runs beyond a quota wait for the
    next UTC day (``on_quota="wait"``) or fail, and manual runs share the same quotas.
    """
    warnings = []
    start = now.astimezone(dt.UTC).date()
    for day in (start + dt.timedelta(days=i) for i in range(days)):
        adhoc = {s.name: k for s in schedules.enabled if (k := len(fires_on(s.parsed_cron(), day)))}
        segment = {s.name: adhoc[s.name] for s in schedules.enabled if s.name in adhoc and s.spends_segment_job}
        for label, counts, quota, scope in (
            ("segment-job", segment, segment_jobs_per_day, "sandbox"),
            ("ad-hoc activation", adhoc, adhoc_per_day, "org"),
        ):
            if (total := sum(counts.values())) > quota:
                detail = ", ".join(f"{n} x{k}" if k > 1 else n for n, k in counts.items())
                warnings.append(
                    f"{total} {label} schedule firings on {day.isoformat()} against a quota of {quota} "
                    f"per {scope} per day ({detail})"
                )
    return warnings

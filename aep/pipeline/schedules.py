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

The accepted cron syntax is in ``cron.py``; what enabled schedules alone would spend of each quota
(``schedules check``) in ``schedule_budget.py``. Both are re-exported here.

Errors raise :class:`ScheduleError`, whose ``str()`` names the file, the schedule and the field path.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar, cast

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from aep_activator.aep.pipeline.cron import Cron, fires_on, parse_cron, previous_fire_time
from aep_activator.aep.pipeline.schedule_budget import quota_warnings

__all__ = [
    "Cron", "Schedule", "ScheduleError", "ScheduleFile", "ScheduleName", "fires_on", "load_schedules",
    "next_fire_times", "parse_cron", "parse_schedules", "previous_fire_time", "quota_warnings",
]

R = TypeVar("R", bound=BaseModel)


ScheduleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


class ScheduleError(ValueError):
    """The schedule file cannot be used. ``str()`` names the file and every problem, one a line."""


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


def next_fire_times(cron: Cron | Schedule[Any], n: int, now: dt.datetime) -> list[dt.datetime]:
    """The next ``n`` fire times strictly after ``now`` (aware UTC datetimes)."""
    cron = cron.parsed_cron() if isinstance(cron, Schedule) else cron
    times = croniter(cron.expr, now.astimezone(dt.UTC), day_or=False)
    return [times.get_next(dt.datetime) for _ in range(n)]

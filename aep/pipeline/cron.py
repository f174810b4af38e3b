"""A UTC cron expression as schedules use it: the accepted syntax, and its fire times.

Fire times come from ``croniter`` with ``day_or=False``: Celery's ``crontab`` semantics, under which a
day must match *both* day-of-month and day-of-week when both are restricted (classic cron ORs them).
Beat fires with Celery's ``crontab`` built from the same five fields; tests/unit/test_cron.py checks,
minute by minute over a year, that the two read every accepted form alike.

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
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from croniter import croniter, croniter_range

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


def fires_on(cron: Cron, day: dt.date) -> list[dt.datetime]:
    """Every fire time of ``cron`` on the UTC date ``day``, ascending."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    last = start + dt.timedelta(days=1, minutes=-1)
    return list(croniter_range(start, last, cron.expr, day_or=False))


def previous_fire_time(cron: Cron, now: dt.datetime) -> dt.datetime:
    """The latest fire time at or before ``now``: the cron slot a firing at ``now`` belongs to."""
    # croniter's get_prev is strictly before its start; fire times are whole minutes, so starting
    # at the next whole minute makes a fire time at ``now``'s own minute count.
    after = now.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return croniter(cron.expr, after, day_or=False).get_prev(dt.datetime)

"""croniter (``schedules list``, the quota lint, the slot keys) and Celery's ``crontab`` (what beat fires on) agree.

The Celery-free layer (``aep/pipeline/schedules.py``) computes fire times with croniter and
``day_or=False``; beat fires with Celery's ``crontab`` built from the same five fields. These tests
hold the two to one reading:

- item by item: every accepted item of every field expands to the same set in both libraries;
- minute by minute over a leap year: the minutes Celery's expanded sets match (all five fields, both
  day fields when both are restricted) are exactly croniter's fire times, and Celery's own next-run
  arithmetic (``remaining_estimate``, what ``is_due`` asks) steps through the same times;
- the slot keys: the latest fire time at or before any moment is the slot Celery fired for.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.schedules import crontab
from croniter import croniter

from aep_activator.aep.pipeline.schedules import (
    Cron,
    fires_on,
    next_fire_times,
    parse_cron,
    previous_fire_time,
)
from aep_activator.workers.beat import cron_of

REPO = Path(__file__).resolve().parents[2]
YEAR = 2028  # a leap year: Feb 29 is a Tuesday
FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
BOUNDS = {"minute": (0, 59), "hour": (0, 23), "day_of_month": (1, 31), "month_of_year": (1, 12), "day_of_week": (0, 6)}
NAMES = {
    "month_of_year": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "day_of_week": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
UTC_APP = Celery("cron-test", set_as_current=False)  # timezone UTC, as beat's app

SHIPPED = [s["cron"] for s in tomllib.loads((REPO / "config" / "schedules.toml").read_text())["schedule"]]
SAMPLES = [
    "0 6 * * *",  # daily
    "*/15 * * * *",  # every quarter hour
    "30 12 * * mon",  # weekly, by name
    "0 0 29 2 *",  # Feb 29 only
    "0 0 29 2 tue",  # both day fields restricted: Feb 29 that is a Tuesday (2028)
    "0 0 13 * fri",  # both restricted: Friday the 13th, never "every Friday or every 13th"
    "5 1,13 1-7 * mon",  # lists, ranges, both restricted: the first Monday of each month
    "1-5/2 */6 */10 */3 */2",  # steps on ranges and on '*' in every field
    "0 23-1 31-2 12-2 sat-mon",  # reversed ranges wrap in every field but the minute
    "50-10 3 * * *",  # a reversed minute range
    "05 9 * * MON,Wed",  # leading zero, names in any case
    "0 12 1 jan,jul *",  # month names in a list
    "*/60 * * * *",  # a step as long as the field
    "0 0 31 * *",  # only the months that have a 31st
    "0 0 * * 0",  # Sunday as 0
    "0 18 * * 1-5",  # weekdays
    "15 3 1,15 * *",  # twice a month
    "0 9 1-7 jan-mar,oct-dec sun",  # both restricted, month ranges by name
]


def full(field: str) -> set[int]:
    lo, hi = BOUNDS[field]
    return set(range(lo, hi + 1))


def croniter_sets(expr: str) -> dict[str, set[int]]:
    expanded, nth = croniter.expand(expr)
    assert not nth  # no "#" forms are accepted
    return {f: full(f) if e == ["*"] else {int(v) for v in e} for f, e in zip(FIELDS, expanded, strict=True)}


def celery_crontab(expr: str, **kwargs: object) -> crontab:
    return crontab(**parse_cron(expr).fields(), app=UTC_APP, **kwargs)


def celery_sets(expr: str) -> dict[str, set[int]]:
    c = crontab(**dict(zip(FIELDS, expr.split(), strict=True)), app=UTC_APP)
    return {f: set(getattr(c, f)) for f in FIELDS}


def items(field: str) -> Iterator[str]:
    """Every accepted item of ``field``: values, all ranges (wrapping ones too), steps, and names."""
    lo, hi = BOUNDS[field]
    values = range(lo, hi + 1)
    yield "*"
    yield from (str(v) for v in values)
    yield from (f"{a}-{b}" for a, b in itertools.permutations(values, 2))
    yield from (f"*/{n}" for n in range(1, hi + 2))
    yield from (f"{a}-{b}/{n}" for a, b in itertools.combinations(values, 2) for n in (2, 7))
    names = NAMES.get(field, [])
    yield from names
    yield from (f"{a}-{b}" for a, b in itertools.permutations(names, 2))
    yield from (f"{a.upper()},{b.capitalize()}" for a, b in itertools.pairwise(names))


def expression(field: str, item: str) -> str:
    return " ".join(item if f == field else "*" for f in FIELDS)


def days_of_the_year() -> Iterator[dt.date]:
    day = dt.date(YEAR, 1, 1)
    while day.year == YEAR:
        yield day
        day += dt.timedelta(days=1)


@functools.cache
def celery_fires_in_the_year(expr: str) -> tuple[dt.datetime, ...]:
    """Minute by minute: every minute of the year whose five fields are all in Celery's expanded sets."""
    c = celery_crontab(expr)
    fires = []
    for day in days_of_the_year():
        weekday = day.isoweekday() % 7  # Sunday is 0
        day_matches = day.month in c.month_of_year and day.day in c.day_of_month and weekday in c.day_of_week
        for hour, minute in itertools.product(range(24), range(60)):
            if day_matches and hour in c.hour and minute in c.minute:
                fires.append(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC))
    return tuple(fires)


# --- item by item ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
def test_every_accepted_item_of_a_field_expands_to_the_same_set_in_croniter_and_celery(field: str) -> None:
    checked, refused = 0, []
    for item in items(field):
        expr = expression(field, item)
        try:
            parse_cron(expr)
        except ValueError as exc:
            refused.append(str(exc))
            continue
        assert croniter_sets(expr)[field] == celery_sets(expr)[field], item
        checked += 1
    assert checked > 30  # the loop ran over real items
    # The only refusals are the forms the two libraries read differently: equal ends, steps on a wrap.
    assert [r for r in refused if "different ends" not in r and "wrapping range" not in r] == []


# --- minute by minute over a year ------------------------------------------------------------------


@pytest.mark.parametrize("expr", SHIPPED + SAMPLES)
def test_croniter_fires_at_exactly_the_minutes_celery_matches_over_a_leap_year(expr: str) -> None:
    cron = parse_cron(expr)
    expected = list(celery_fires_in_the_year(expr))
    assert expected  # every sample fires in the year
    ours = [t for day in days_of_the_year() for t in fires_on(cron, day)]  # the quota lint's view
    assert ours == expected
    # schedules list's view: the next fire times from the year's start, and from its middle
    middle = len(expected) // 2
    for first in (0, middle):
        shown = expected[first : first + 500]
        assert next_fire_times(cron, len(shown), shown[0] - dt.timedelta(seconds=30)) == shown


@pytest.mark.parametrize("expr", SHIPPED + SAMPLES)
def test_celerys_next_run_arithmetic_steps_through_the_same_fire_times(expr: str) -> None:
    cron = parse_cron(expr)
    now: list[dt.datetime] = []
    celery = celery_crontab(expr, nowfun=lambda: now[-1])
    t = dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC) - dt.timedelta(minutes=1)
    ours = next_fire_times(cron, 200, t)  # sparse and dense schedules alike: the first 200 firings
    for expected in ours:
        now.append(t)
        assert t + celery.remaining_estimate(t) == expected, t
        now.append(expected)
        assert celery.is_due(t).is_due  # what beat asks at that minute, after a run at ``t``
        now.append(expected - dt.timedelta(seconds=1))
        assert not celery.is_due(t).is_due
        t = expected


# --- slot keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", SHIPPED + SAMPLES)
def test_the_slot_of_any_moment_is_the_latest_celery_fire_time_at_or_before_it(expr: str) -> None:
    cron = parse_cron(expr)
    fires = celery_fires_in_the_year(expr)
    # Through beat's own path too: the slot is computed from the crontab RedBeat hands back.
    beats = cron_of(celery_crontab(expr))
    assert croniter_sets(beats.expr) == croniter_sets(cron.expr) == celery_sets(expr)
    for slot, following in [*itertools.pairwise(fires[:300]), *itertools.pairwise(fires[-300:])]:
        assert previous_fire_time(cron, slot) == slot
        assert previous_fire_time(cron, slot + dt.timedelta(seconds=59, microseconds=999_999)) == slot
        assert previous_fire_time(cron, following - dt.timedelta(microseconds=1)) == slot
        assert previous_fire_time(beats, following - dt.timedelta(seconds=1)) == slot


def test_beats_crontab_of_a_parsed_schedule_is_a_valid_cron_of_the_same_sets() -> None:
    beats = cron_of(celery_crontab("*/15 9-17 * * mon-fri"))
    assert isinstance(beats, Cron)
    assert parse_cron(beats.expr) == beats

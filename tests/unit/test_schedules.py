"""The schedule file: validation with clear errors, UTC fire times, the quota overspend check, the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from celery.schedules import crontab
from click.testing import CliRunner

from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.schedules import (
    ScheduleError,
    ScheduleFile,
    load_schedules,
    next_fire_times,
    parse_cron,
    parse_schedules,
    previous_fire_time,
    quota_warnings,
)
from aep_activator.aep.pipeline.scopes import QuotaLimits
from aep_activator.workers.cli import main

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC)  # a Tuesday


def entry(name: str, cron: str, *, segment_job: bool = True, enabled: bool = True, extra: str = "") -> str:
    return f"""
[[schedule]]
name = "{name}"
cron = "{cron}"
enabled = {str(enabled).lower()}
{extra}
[schedule.request]
version = 2
segment_job = {str(segment_job).lower()}
[schedule.request.activation_info]
"dataflow-{name}" = ["audience-{name}"]
"""


def daily(segment_jobs: int, adhoc: int) -> QuotaLimits:
    """Daily limits only: a yearly limit no schedule here reaches."""
    return QuotaLimits(adhoc_per_day=adhoc, segment_jobs_per_day=segment_jobs,
                       segment_jobs_per_year={"production": 10_000, "development": 10_000})  # fmt: skip


def flat(text: str) -> str:
    """Rich wraps console output at the terminal width; compare words, not line breaks."""
    return " ".join(text.split())


def parse(text: str) -> ScheduleFile[ActivationRequest]:
    return parse_schedules(text, ActivationRequest, "s.toml")


def error_of(text: str) -> str:
    with pytest.raises(ScheduleError) as info:
        parse(text)
    return str(info.value)


# --- validation ------------------------------------------------------------------------------------


def test_the_shipped_schedule_file_is_valid_and_uses_the_example_request_ids() -> None:
    parsed = load_schedules(REPO / "config" / "schedules.toml", ActivationRequest)
    example = json.loads((REPO / "examples" / "activation-request.json").read_text())
    enabled = parsed.enabled
    assert [s.enabled for s in parsed.schedule] == [True, False]
    assert len(enabled) == 1
    assert enabled[0].request.activation_info == example["activation_info"]
    assert enabled[0].request.segment_ids == example["segment_ids"]
    assert next_fire_times(enabled[0], 2, NOW) == [NOW.replace(hour=6), NOW.replace(day=15, hour=6)]
    # Within every quota of the shipped defaults, this year and the next.
    assert quota_warnings(parsed, QuotaLimits(adhoc_per_day=20, segment_jobs_per_day=2), now=NOW, days=60) == []


@pytest.mark.parametrize(
    ("cron", "field"),
    [
        ("61 6 * * *", "minute"),
        ("0 25 * * *", "hour"),
        ("0 6 0 * *", "day_of_month"),
        ("0 6 * 13 *", "month_of_year"),
        ("0 6 * * funday", "day_of_week"),
        ("*/0 6 * * *", "minute"),
    ],
)
def test_a_bad_cron_field_is_named_with_its_schedule(cron: str, field: str) -> None:
    message = error_of(entry("nightly", cron))
    assert "schedule 'nightly': cron:" in message
    assert f"{field} field" in message


def test_a_cron_without_five_fields_is_rejected() -> None:
    assert "expected 5 fields" in error_of(entry("nightly", "0 6 * *"))


def test_an_unknown_top_level_field_is_rejected_with_the_allowed_ones() -> None:
    message = error_of('schedules = []\n' + entry("a", "0 6 * * *"))
    assert "schedules: unknown field (allowed: schedule)" in message


def test_an_unknown_entry_field_is_rejected_naming_the_schedule() -> None:
    message = error_of(entry("a", "0 6 * * *", extra='timezone = "Europe/Paris"'))
    assert "schedule 'a': timezone: unknown field (allowed: name, cron, enabled, request)" in message


def test_duplicate_schedule_names_are_rejected() -> None:
    message = error_of(entry("same", "0 6 * * *") + entry("same", "0 7 * * *"))
    assert "schedule 'same': name used 2 times" in message


def test_an_invalid_request_names_the_field_path() -> None:
    text = entry("a", "0 6 * * *").replace('"dataflow-a" = ["audience-a"]', '"dataflow-a" = []')
    message = error_of(text)
    assert "schedule 'a': request.activation_info.dataflow-a:" in message


def test_a_request_field_error_inside_the_request_model_names_it() -> None:
    text = entry("a", "0 6 * * *").replace("version = 2", "version = 1")
    assert "schedule 'a': request: export_job: required for ad-hoc v1" in error_of(text)


def test_a_request_may_not_fix_its_own_idempotency_key() -> None:
    text = entry("a", "0 6 * * *").replace("version = 2", 'version = 2\nidempotency_key = "fixed"')
    assert "request: idempotency_key: not allowed in a schedule" in error_of(text)


def test_a_toml_syntax_error_gives_the_line() -> None:
    message = error_of('[[schedule]]\nname = "a"\ncron = 0 6 * * *\n')
    assert message.startswith("s.toml: TOML syntax error:")
    assert "line 3" in message


def test_every_problem_is_reported_at_once() -> None:
    message = error_of(entry("a", "0 25 * * *") + entry("a", "0 6 * * *", extra="colour = 1"))
    assert message.count("\n  ") == 3  # bad hour, unknown field, duplicate name


def test_a_missing_file_is_a_schedule_error(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="cannot read the schedule file"):
        load_schedules(tmp_path / "none.toml", ActivationRequest)


# --- cron syntax ------------------------------------------------------------------------------------

CELERY_FORMS = [
    "0 6 * * *", "*/15 * * * *", "0 0 29 2 *", "0 0 13 * fri", "30 23 * * 0", "5 1,13 1-7 * mon",
    "1-5/2 */6 */10 */3 */2", "0 23-1 31-2 12-2 sat-mon", "0 0 * jan sun-sat", "05 9 * * MON,Wed",
    "0 0 * * sun", "*/60 * * * *", "0 12 1 jan,jul *",
]


@pytest.mark.parametrize("expr", CELERY_FORMS)
def test_an_accepted_form_reaches_celery_as_written(expr: str) -> None:
    # Beat builds its crontab from these fields; tests/unit/test_cron.py checks croniter reads them alike.
    m, h, dom, mon, dow = expr.split()
    assert crontab(**parse_cron(f"  {expr} ").fields()) == crontab(m, h, dow, dom, mon)
    assert parse_cron(f"  {expr} ").expr == expr


@pytest.mark.parametrize(
    "expr",
    ["5/15 * * * *", "mon * * * *", "0 6 * * 7", "0 6 * * 0-7", "1,,2 * * * *", "-5 * * * *", "23-1/2 * * * *",
     # forms croniter and Celery read differently, or only one of them knows
     "5-5 * * * *", "0 0 * * mon-1", "0 0 * * sun/2", "0 0 * * sunday", "0 0 * * tues", "0 0 * * fri#2",
     "0 0 L * *", "0 0 15W * *", "0 0 ? * *", "H * * * *", "R * * * *", "+5 * * * *", "0 0 * * 5L",
     "@daily", "0 0 1 1 * 2026", "0 0 30 2 *", "0 0 31 4,6 *"],
)
def test_forms_that_celery_rejects_or_reads_surprisingly_are_rejected(expr: str) -> None:
    with pytest.raises(ValueError, match="field"):
        parse_cron(expr)


def test_an_unsupported_form_names_the_schedule_and_the_field() -> None:
    assert "schedule 'monthly': cron: day_of_month field 'L':" in error_of(entry("monthly", "0 0 L * *"))
    assert "schedule 'w': cron: day_of_week field 'sunday': 'sunday' is not a number or a three-letter name" in (
        error_of(entry("w", "0 0 * * sunday"))
    )
    assert "schedule 'five': cron: minute field '5-5': a range needs two different ends; write 5" in (
        error_of(entry("five", "5-5 * * * *"))
    )


def test_a_date_that_never_occurs_is_refused_instead_of_never_firing() -> None:
    message = error_of(entry("feb30", "0 0 30 2 *"))
    assert "schedule 'feb30': cron: day_of_month field '30': never occurs in month_of_year '2'" in message
    assert parse_cron("0 0 29 2 *").expr == "0 0 29 2 *"  # Feb 29 does occur


# --- fire times ------------------------------------------------------------------------------------


def test_next_fire_times_are_utc_and_strictly_after_now() -> None:
    cron = parse_cron("30 12 * * mon")
    assert next_fire_times(cron, 2, dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC)) == [
        dt.datetime(2026, 12, 14, 12, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 21, 12, 30, tzinfo=dt.UTC),
    ]
    paris = dt.timezone(dt.timedelta(hours=1))
    assert next_fire_times(parse_cron("0 6 * * *"), 1, dt.datetime(2026, 12, 1, 6, 30, tzinfo=paris)) == [
        dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
    ]


@pytest.mark.parametrize("expr", CELERY_FORMS)
def test_next_fire_time_agrees_with_celery_crontab(expr: str) -> None:
    m, h, dom, mon, dow = expr.split()
    celery_cron = crontab(m, h, dow, dom, mon, nowfun=lambda: NOW)
    assert next_fire_times(parse_cron(expr), 1, NOW) == [NOW + celery_cron.remaining_estimate(NOW)]


def test_the_previous_fire_time_is_the_slot_at_or_before_now() -> None:
    cron = parse_cron("0 6 * * *")
    assert previous_fire_time(cron, NOW.replace(hour=6)) == NOW.replace(hour=6)
    assert previous_fire_time(cron, NOW.replace(hour=6, minute=0, second=59)) == NOW.replace(hour=6)
    assert previous_fire_time(cron, NOW) == NOW.replace(day=30, month=11, hour=6)


# --- quota overspend ---------------------------------------------------------------------------------


def test_three_daily_segment_job_schedules_warn_against_a_quota_of_two() -> None:
    text = entry("a", "0 1 * * *") + entry("b", "0 2 * * *") + entry("c", "0 3 * * *")
    warnings = quota_warnings(parse(text), daily(2, 20), now=NOW)
    assert len(warnings) == 7  # every day of the week ahead
    assert warnings[0] == (
        "3 segment-job schedule firings on 2026-12-01 against a quota of 2 per sandbox per day (a, b, c)"
    )


def test_disabled_and_segment_free_schedules_do_not_count_against_the_segment_quota() -> None:
    text = (
        entry("a", "0 1 * * *")
        + entry("b", "0 2 * * *", enabled=False)
        + entry("c", "0 3 * * *", segment_job=False)
    )
    assert quota_warnings(parse(text), daily(1, 20), now=NOW) == []


def test_a_weekly_overspend_is_reported_only_on_its_day() -> None:
    text = entry("a", "0 1 * * *") + entry("b", "0 2 * * *") + entry("wed", "0 3 * * wed")
    warnings = quota_warnings(parse(text), daily(2, 20), now=NOW)
    assert warnings == [
        "3 segment-job schedule firings on 2026-12-02 against a quota of 2 per sandbox per day (a, b, wed)"
    ]


def test_a_schedule_firing_every_half_hour_overspends_the_adhoc_quota() -> None:
    parsed = parse(entry("often", "*/30 * * * *", segment_job=False))
    warnings = quota_warnings(parsed, daily(2, 20), now=NOW, days=1)
    assert warnings == [
        "48 ad-hoc activation schedule firings on 2026-12-01 against a quota of 20 per org per day"
        " (often x48)"
    ]


def test_segment_job_schedules_count_per_sandbox() -> None:
    parsed = parse(entry_in("a", "prod") + entry_in("b", "dev"))
    assert quota_warnings(parsed, daily(1, 20), now=NOW, days=1) == []
    parsed = parse(entry_in("a", "prod") + entry_in("b", "dev") + entry_in("c", "prod", "0 3 * * *"))
    assert quota_warnings(parsed, daily(1, 20), now=NOW, days=1) == [
        "2 segment-job schedule firings on 2026-12-01 against a quota of 1 per sandbox prod per day (a, c)"
    ]


def entry_in(name: str, sandbox: str, cron: str = "0 6 * * *") -> str:
    return entry(name, cron).replace("version = 2", f'sandbox = "{sandbox}"\nversion = 2')


def test_daily_segment_job_schedules_that_outlast_the_yearly_limit_warn_once_per_sandbox() -> None:
    limits = QuotaLimits(adhoc_per_day=20, segment_jobs_per_day=2, segment_jobs_per_year={"production": 20,
                         "development": 100}, sandbox_types={"dev": "development"})  # fmt: skip
    parsed = parse(entry_in("nightly", "prod") + entry_in("dev-nightly", "dev"))
    assert quota_warnings(parsed, limits, now=NOW) == [
        "31 segment-job schedule firings in sandbox prod before the contract year renews on 2027-01-01, against "
        "a yearly limit of 20 (production) (nightly x31)"
    ]
    # The contract year renews on 15 December: 14 firings fit in 20 this year, the next year has 365.
    renews = QuotaLimits(adhoc_per_day=20, segment_jobs_per_day=2, segment_jobs_per_year={"production": 20,
                         "development": 400}, year_start=(12, 15), sandbox_types={"dev": "development"})  # fmt: skip
    assert quota_warnings(parsed, renews, now=NOW) == [
        "365 segment-job schedule firings in sandbox prod in the contract year that opens on 2026-12-15, against "
        "a yearly limit of 20 (production) (nightly x365)"
    ]


def test_schedule_firings_beyond_the_share_held_back_for_them_are_reported_once() -> None:
    limits = QuotaLimits(adhoc_per_day=20, segment_jobs_per_day=2, reserved_for_schedules={"adhoc": 1},
                         segment_jobs_per_year={"production": 10_000})  # fmt: skip
    parsed = parse(entry("a", "0 6 * * *", segment_job=False) + entry("b", "0 7 * * *", segment_job=False))
    assert quota_warnings(parsed, limits, now=NOW) == [
        "2 adhoc schedule firings on 2026-12-01, but QUOTA_RESERVED_FOR_SCHEDULES holds back only 1: the other 1 "
        "compete with producer runs for the rest of the day's quota"
    ]
    assert quota_warnings(parse(entry("a", "0 6 * * *", segment_job=False)), limits, now=NOW) == []


# --- CLI ---------------------------------------------------------------------------------------------


def test_schedules_check_exits_0_and_prints_quota_warnings(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(entry("a", "0 1 * * *") + entry("b", "0 2 * * *") + entry("c", "0 3 * * *"))
    result = CliRunner().invoke(main, ["schedules", "check", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK (3 schedules, 3 enabled)" in flat(result.stdout)
    assert "3 segment-job schedule firings on" in flat(result.stderr)


def test_schedules_check_exits_2_on_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(entry("a", "0 25 * * *"))
    result = CliRunner().invoke(main, ["schedules", "check", "--file", str(path)])
    assert result.exit_code == 2
    assert "schedule 'a': cron: hour field '25'" in flat(result.stderr)


def test_schedules_list_shows_each_schedule_with_its_next_utc_fire_times(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(entry("daily", "0 6 * * *") + entry("off", "0 7 * * *", enabled=False))
    result = CliRunner().invoke(main, ["schedules", "list", "--file", str(path), "--count", "2"])
    assert result.exit_code == 0, result.output
    assert "daily" in result.stdout
    assert "off" in result.stdout
    assert result.stdout.count(":00") == 2  # two fire times for the enabled one
    assert "never (disabled)" in result.stdout  # a disabled schedule lists none

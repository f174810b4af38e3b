"""Beat on real Redis: a double fire in one cron slot starts one run, and only one beat holds the lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.schedules import Schedule, previous_fire_time
from aep_activator.config.settings import Settings, load_settings
from aep_activator.tasks import runtime
from aep_activator.tasks.celery import celery_config, configure
from aep_activator.workers.beat import (
    SlotRedBeatScheduler,
    beat_config,
    cron_of,
    fire_key,
    fire_schedule,
    parse_activation_schedules,
)

pytestmark = pytest.mark.integration

SCHEDULE = """
[[schedule]]
name = "daily"
cron = "0 6 * * *"
[schedule.request]
version = 2
[schedule.request.activation_info]
"dataflow-1" = ["audience-1"]
"""
SLOT = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Iterator[Settings]:
    """Settings under the test's key prefix (the queue too), with this process pointed at them."""
    s = load_settings(redis_url=redis_url, aep_key_prefix=key_prefix, aep_queue=f"{key_prefix}queue",
                      aep_org_id="SIMORG0000000000000000000@AdobeOrg", aep_sandbox_name="prod")  # a run needs both
    configure(s)
    yield s
    runtime.configure(None)
    with redis.Redis.from_url(redis_url) as client:  # kombu's binding keys are named after the queue
        for key in client.scan_iter(match=f"_kombu.binding*{s.aep_queue}"):
            client.delete(key)


def runs_for(key: str) -> list[Any]:
    return [r for r in runtime.runtime().ledger.recent(100) if r.idempotency_key == key]


def test_firing_one_schedule_twice_for_one_slot_starts_one_run(settings: Settings) -> None:
    schedule: Schedule[ActivationRequest] = parse_activation_schedules(SCHEDULE).schedule[0]
    first = fire_schedule(schedule, SLOT)
    second = fire_schedule(schedule, SLOT + dt.timedelta(seconds=40))  # same minute: same slot
    assert first == second
    runs = runs_for("schedule:daily:2026-12-01T06:00Z")
    assert [r.run_id for r in runs] == [first]
    assert runs[0].started_by == "schedule:daily"
    assert fire_schedule(schedule, SLOT + dt.timedelta(days=1)) != first  # the next slot is a new run


def test_both_firings_of_a_slot_record_one_run_before_any_message_exists(settings: Settings) -> None:
    beat_app = Celery("beat-test", set_as_current=False)
    beat_app.config_from_object(celery_config(settings))
    schedules = parse_activation_schedules(SCHEDULE)
    beat_app.conf.update(beat_config(settings, schedules, lock_timeout_s=3, max_interval_s=1))
    scheduler = SlotRedBeatScheduler(app=beat_app)
    try:
        entry = scheduler.Entry.from_key(scheduler.Entry.generate_key(beat_app, "daily"), app=beat_app)
        first = scheduler.apply_async(entry)
        second = scheduler.apply_async(entry)  # a second beat, or a retry, in the same slot
        with beat_app.connection_for_read() as conn, conn.SimpleQueue(settings.aep_queue) as queue:
            messages = [queue.get(timeout=5)]
            messages[0].ack()
            with pytest.raises(queue.Empty):
                queue.get(timeout=0.5)
    finally:
        scheduler.close()
        beat_app.redbeat_redis.close()
        beat_app.close()
    key = fire_key("daily", previous_fire_time(cron_of(entry.schedule), dt.datetime.now(dt.UTC)))
    assert first.id == second.id and [r.run_id for r in runs_for(key)] == [first.id]
    # No activation.start message that kombu could lose: beat recorded the run (and its carrier) itself,
    # and the only message is the first step's wake-up.
    (message,) = messages
    assert message.headers["task"] == "activation.create_segment_job"
    assert message.payload[0] == [first.id, 1]


# --- the lock: two real `aep-activator beat` processes ---------------------------------------------------

LOCK_TIMEOUT_S = 3
MAX_INTERVAL_S = 1


def start_beat(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "aep-activator"), "beat", "-l", "info",
             f"--lock-timeout={LOCK_TIMEOUT_S}", f"--max-interval={MAX_INTERVAL_S}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )
    return proc, log


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Seconds until ``text`` appears in ``log``; fails if the process exits or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if text in log.read_text(errors="replace"):
            return time.monotonic() - started
        if proc.poll() is not None:
            raise AssertionError(f"beat exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout_s}s:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_a_second_beat_waits_for_the_lock_and_takes_over_after_the_first_is_killed(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "schedules.toml").write_text(SCHEDULE)
    env = {**os.environ, "REDIS_URL": redis_url, "AEP_KEY_PREFIX": key_prefix,
           "AEP_SCHEDULES_FILE": str(tmp_path / "schedules.toml"), "PYTHONUNBUFFERED": "1"}
    first, first_log = start_beat(tmp_path, "first", env)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(first_log, "beat: Acquired lock", first, timeout_s=20)
        second, second_log = start_beat(tmp_path, "second", env)
        wait_for(second_log, "beat: Starting", second, timeout_s=20)
        time.sleep(LOCK_TIMEOUT_S)  # longer than the lock would last if the first beat stopped extending it
        assert "Acquired lock" not in second_log.read_text()
        stop(first)  # kill -9: the lock is not released, it has to expire
        took = wait_for(second_log, "beat: Acquired lock", second, timeout_s=LOCK_TIMEOUT_S + MAX_INTERVAL_S + 3)
        assert took <= LOCK_TIMEOUT_S + MAX_INTERVAL_S + 1
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_with_json_logs_every_line_beat_prints_is_a_json_object(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "schedules.toml").write_text(SCHEDULE)
    env = {**os.environ, "REDIS_URL": redis_url, "AEP_KEY_PREFIX": key_prefix, "LOG_FORMAT": "json",
           "AEP_SCHEDULES_FILE": str(tmp_path / "schedules.toml"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    proc, log = start_beat(tmp_path, "json", env)
    try:
        wait_for(log, "beat: Acquired lock", proc, timeout_s=20)
    finally:
        stop(proc)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # no banner, no rich text: each line parses
    assert all({"time", "level", "logger", "message"} <= set(p) for p in parsed)
    assert any(re.fullmatch(r"beat: \d+ of \d+ schedules? enabled \(cron in UTC\)", p["message"]) for p in parsed)

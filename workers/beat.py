"""Celery beat for ``config/schedules.toml``: RedBeat, one active scheduler, one run per cron slot.

**One scheduler.** RedBeat keeps the schedule in Redis and holds a lock (``<AEP_KEY_PREFIX>redbeat::lock``)
while it runs; a second beat blocks on the lock and takes over within ``lock_timeout_s`` after the
first dies. The lock is re-extended every tick, and a tick comes at least every ``max_interval_s``,
so ``max_interval_s`` must stay well below ``lock_timeout_s`` (RedBeat's default lock is 25 minutes:
far too long a gap for a daily schedule).

**One run per slot.** Every enabled schedule becomes a beat entry for the public task ``activation.start``
with the schedule's request, but beat records the run itself (:class:`SlotRedBeatScheduler`), with
``idempotency_key = "schedule:<name>:<slot>"``, where ``slot`` is the latest cron time at or before
now (minute resolution, UTC) — the slot that made the entry due, not the moment it was sent. Two
beats (a lock hand-over), a restart or a retry within one slot therefore use the same key, and
``start_activation`` returns the existing run instead of starting a second. After beat was down
across slots it fires once, for the latest missed slot. A new schedule first fires at its next slot
(RedBeat records "last run = now" when it installs an entry).

Removing or disabling a schedule removes its entry at the next beat start (RedBeat drops static
entries no longer configured).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from celery.beat import SchedulingError
from celery.schedules import crontab
from redbeat import RedBeatScheduler

from aep_activator.aep.pipeline import plan as c
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.schedules import (
    Cron,
    Schedule,
    ScheduleFile,
    load_schedules,
    parse_cron,
    parse_schedules,
    previous_fire_time,
)
from aep_activator.config.settings import Settings

LOCK_TIMEOUT_S = 90.0
MAX_INTERVAL_S = 15.0
SCHEDULER = "aep_activator.workers.beat:SlotRedBeatScheduler"


ActivationSchedules = ScheduleFile[ActivationRequest]


def load_activation_schedules(path: str | Path) -> ActivationSchedules:
    """The schedule file at ``path``, each request an :class:`ActivationRequest`; raises ``ScheduleError``."""
    return load_schedules(path, ActivationRequest)


def parse_activation_schedules(text: str, source: str = "<schedules>") -> ActivationSchedules:
    return parse_schedules(text, ActivationRequest, source)


def fire_key(schedule_name: str, slot: dt.datetime) -> str:
    """The idempotency key of one firing: the schedule's name and its UTC cron slot, to the minute."""
    return f"schedule:{schedule_name}:{slot.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}"


def firing_request(schedule_name: str, request: dict[str, Any], slot: dt.datetime) -> dict[str, Any]:
    """The ``activation.start`` kwargs for one firing: the request, who started it, and the slot key."""
    return {
        **request,
        "started_by": f"schedule:{schedule_name}",
        "idempotency_key": fire_key(schedule_name, slot),
    }


def fire_schedule(schedule: Schedule[ActivationRequest], slot: dt.datetime) -> str:
    """Start (or find) the run of ``schedule`` for cron ``slot`` in this process. Returns the run id.

    This is what a worker does with the message beat sends; calling it twice for one slot returns
    the same run id and enqueues nothing new.
    """
    from aep_activator.tasks.producer import start_activation

    return start_activation(firing_request(schedule.name, schedule.request.wire(), slot))


def beat_schedule(schedules: ActivationSchedules, queue: str) -> dict[str, dict[str, Any]]:
    """Celery ``beat_schedule`` entries for the enabled schedules (the slot key is added at send time)."""
    return {
        s.name: {
            "task": c.TASK_START,
            "schedule": crontab(**s.parsed_cron().fields()),
            "kwargs": {**s.request.wire(), "started_by": f"schedule:{s.name}"},
            "options": {"queue": queue},
        }
        for s in schedules.enabled
    }


RECONCILE_ENTRY = "aep-activator:reconcile"


def reconcile_entry(settings: Settings) -> dict[str, dict[str, Any]]:
    if not settings.reconcile_interval_s:
        return {}
    from aep_activator.tasks.periodic import TASK_RECONCILE

    return {RECONCILE_ENTRY: {"task": TASK_RECONCILE, "schedule": dt.timedelta(seconds=settings.reconcile_interval_s),
                              "options": {"queue": settings.aep_queue}}}  # fmt: skip


def beat_config(
    settings: Settings,
    schedules: ActivationSchedules,
    *,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    max_interval_s: float = MAX_INTERVAL_S,
) -> dict[str, Any]:
    """The Celery settings beat adds to the app's: RedBeat under the key prefix, UTC, the entries, and the
    reconciliation with AEP every ``RECONCILE_INTERVAL_S`` (tasks/reconcile.py)."""
    if not 0 < max_interval_s * 3 <= lock_timeout_s:
        raise ValueError(
            f"max interval {max_interval_s:g}s must be at most a third of the lock timeout "
            f"{lock_timeout_s:g}s, or the lock can expire between ticks and a second beat take over"
        )
    return {
        "beat_scheduler": SCHEDULER,
        "beat_schedule": {**beat_schedule(schedules, settings.aep_queue), **reconcile_entry(settings)},
        "beat_max_loop_interval": max_interval_s,
        "redbeat_redis_url": settings.redis_url,
        # Explicit, so RedBeat does not fall back to (and warn about) broker_transport_options.
        "redbeat_redis_options": {},
        "redbeat_key_prefix": f"{settings.aep_key_prefix}redbeat:",
        "redbeat_lock_timeout": int(lock_timeout_s),
        "timezone": "UTC",
        "enable_utc": True,
    }


@dataclass(frozen=True)
class Fired:
    """What beat logs for a firing (Celery's scheduler reads ``.id``): the run it recorded."""

    id: str


class SlotRedBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat that records each schedule's run itself, with its cron slot's idempotency key.

    Beat does not send ``activation.start``: kombu's Redis transport can lose a message between BRPOP
    and its unacked record, before any worker recorded the run. Instead the firing records the run and
    its first carrier in Redis (``start_activation``, as the Python producer does), then publishes the
    first step's wake-up; a lost wake-up is published again by the watchdog.
    """

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if entry.task != c.TASK_START or not isinstance(entry.schedule, crontab):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        from aep_activator.tasks.producer import start_activation

        entry = self.reserve(entry) if advance else entry
        slot = previous_fire_time(cron_of(entry.schedule), self.app.now())
        try:
            return Fired(start_activation(firing_request(entry.name, dict(entry.kwargs or {}), slot)))
        except Exception as exc:  # as Celery's own scheduler does: log it, keep the schedule going
            raise SchedulingError(f"schedule {entry.name!r}: could not record its run: {exc}") from exc


def cron_of(schedule: crontab) -> Cron:
    """A Celery ``crontab`` as a :class:`Cron` listing the values Celery expanded, for slot arithmetic.

    RedBeat hands the scheduler a ``crontab`` decoded from Redis, not the schedule file's text; its
    expanded sets are what beat fires on, so the slot is computed from exactly those.
    """
    fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    return parse_cron(" ".join(",".join(str(v) for v in sorted(getattr(schedule, f))) for f in fields))


def lock_key(settings: Settings) -> str:
    """RedBeat's lock key for these settings (RedBeat appends ``:lock`` to ``redbeat_key_prefix``)."""
    return f"{settings.aep_key_prefix}redbeat::lock"


def standby_notice(settings: Settings, ttl_ms: int, now: float) -> str | None:
    """What a beat that must wait says, given the lock's remaining ``ttl_ms`` (``PTTL``); ``None``: it is free."""
    if ttl_ms <= 0:
        return None
    until = dt.datetime.fromtimestamp(now + ttl_ms / 1000, dt.UTC).strftime("%H:%M:%S")
    return (f"beat: standby: another beat holds the lock {lock_key(settings)} (until {until} UTC unless it renews "
            "it); this one takes over when that beat stops or dies")  # fmt: skip


def run_beat(app: Celery, *, loglevel: str = "info", quiet: bool = False) -> None:
    """Run beat in this process with the app's configuration (see :func:`beat_config`); blocks.
    ``quiet``: no banner (LOG_FORMAT=json, where every line is a JSON object)."""
    app.Beat(loglevel=loglevel, scheduler=SCHEDULER, max_interval=app.conf.beat_max_loop_interval, quiet=quiet).run()

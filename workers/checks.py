"""Start-up self-checks for the worker and beat. Each returns problems; the caller warns or refuses."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from aep_activator.config.settings import Settings


@dataclass(frozen=True)
class Problem:
    fatal: bool
    message: str


def check_redis_policy(client: redis.Redis) -> list[Problem]:
    """An evicting Redis may drop a quota key, and an evicted quota means overshoot."""
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.ResponseError:
        return [Problem(False, "cannot read Redis maxmemory-policy (CONFIG disabled?); make sure it is noeviction")]
    if policy not in (None, "noeviction"):
        return [
            Problem(
                True,
                f"Redis maxmemory-policy is {policy!r}; it must be 'noeviction', or Redis may "
                "evict quota and run-ledger keys and a quota could be exceeded",
            )
        ]
    return []


def check_timeouts(s: Settings) -> list[Problem]:
    """Redis redelivers a message whose task runs longer than the visibility timeout."""
    problems = []
    if s.visibility_timeout_s <= s.task_time_limit_s:
        problems.append(
            Problem(
                True,
                f"VISIBILITY_TIMEOUT_S ({s.visibility_timeout_s:.0f}) must exceed "
                f"TASK_TIME_LIMIT_S ({s.task_time_limit_s:.0f})",
            )
        )
    if s.visibility_timeout_s < 60:
        problems.append(
            Problem(
                False, f"VISIBILITY_TIMEOUT_S is {s.visibility_timeout_s:.0f}s: fine for tests, short for production"
            )
        )
    return problems


def check_utc() -> list[Problem]:
    """Schedules and quota windows are UTC; a host clock in another zone is fine, a TZ override is not."""
    import os

    tz = os.environ.get("TZ")
    if tz and tz not in ("UTC", "Etc/UTC", "UTC0", ":UTC", "Z"):
        return [
            Problem(
                False,
                f"TZ={tz}: schedules are evaluated in UTC regardless; cron times in config/schedules.toml are UTC",
            )
        ]
    if time.localtime().tm_gmtoff != 0:
        return [Problem(False, "the host's local time is not UTC; schedules and quotas use UTC regardless")]
    return []


def check_removed_settings() -> list[Problem]:
    """Variables an earlier version read: they change nothing now, and the operator should know."""
    from aep_activator.config.settings import removed_settings_in_use

    return [Problem(False, line) for line in removed_settings_in_use()]

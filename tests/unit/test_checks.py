"""Start-up self-checks: refuse what would break quotas or exactly-once, warn about the rest."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from aep_activator.config.settings import SettingsError, load_settings
from aep_activator.workers.checks import check_redis_policy, check_timeouts, check_utc


class PolicyRedis:
    def __init__(self, policy: str | None, *, fail: bool = False) -> None:
        self.policy = policy
        self.fail = fail

    def config_get(self, name: str) -> dict[str, Any]:
        if self.fail:
            raise redis.ResponseError("unknown command 'CONFIG'")
        return {name: self.policy}


def test_an_evicting_redis_is_refused_because_a_lost_quota_key_means_overshoot() -> None:
    (problem,) = check_redis_policy(PolicyRedis("allkeys-lru"))  # type: ignore[arg-type]
    assert problem.fatal and "allkeys-lru" in problem.message and "noeviction" in problem.message


def test_noeviction_passes_and_an_unreadable_policy_only_warns() -> None:
    assert check_redis_policy(PolicyRedis("noeviction")) == []  # type: ignore[arg-type]
    (problem,) = check_redis_policy(PolicyRedis(None, fail=True))  # type: ignore[arg-type]
    assert not problem.fatal


def test_the_real_test_redis_policy_is_read(redis_client: redis.Redis) -> None:
    problems = check_redis_policy(redis_client)
    policy = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    assert bool(problems) == (policy != "noeviction")


def test_a_visibility_timeout_not_above_the_task_time_limit_is_refused_at_settings_load() -> None:
    with pytest.raises(SettingsError, match="VISIBILITY_TIMEOUT_S must be above TASK_TIME_LIMIT_S"):
        load_settings(visibility_timeout_s=60, task_time_limit_s=60)


def test_a_short_visibility_timeout_is_a_warning_not_a_refusal() -> None:
    (problem,) = check_timeouts(load_settings(visibility_timeout_s=30, task_time_limit_s=20))
    assert not problem.fatal


def test_a_non_utc_tz_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    (problem,) = check_utc()
    assert not problem.fatal and "UTC" in problem.message

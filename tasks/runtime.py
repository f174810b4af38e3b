"""The per-process runtime a task needs: Redis, ledgers and (lazily) the AEP client.

Built on first use in each process, so a prefork child builds its own connections after the fork.
This module and the entry points are the only places that read settings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import redis

from aep_activator.aep.api.auth import IMSTokenProvider, StaticToken, TokenProvider
from aep_activator.aep.api.client import AEPClient, make_session
from aep_activator.aep.coordination.delays import RedisDelayQueue
from aep_activator.aep.coordination.locks import AudienceLocks
from aep_activator.aep.coordination.quota import RedisQuotaLedger
from aep_activator.aep.coordination.redis_url import redis_from_url
from aep_activator.aep.coordination.runs import RunLedger
from aep_activator.aep.pipeline.backoff import PollSchedule
from aep_activator.aep.pipeline.steps import StepConfig, StepContext
from aep_activator.config.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    ledger: RunLedger
    quotas: RedisQuotaLedger
    locks: AudienceLocks
    delays: RedisDelayQueue
    _client: AEPClient | None = field(default=None, repr=False)

    @property
    def client(self) -> AEPClient:
        if self._client is None:
            self._client = build_client(self.settings, self.redis)
        return self._client

    def step_context(self) -> StepContext:
        s = self.settings
        return StepContext(
            client=self.client,
            ledger=self.ledger,
            quotas=self.quotas,
            locks=self.locks,
            config=step_config(s),
            clock=time.time,
        )


def step_config(s: Settings) -> StepConfig:
    return StepConfig(
        org_id=s.aep_org_id or "",
        sandbox=s.aep_sandbox_name,
        segment_poll=PollSchedule(
            s.poll_segment_initial_s, s.poll_factor, s.poll_segment_cap_s, s.poll_segment_deadline_s
        ),
        export_poll=PollSchedule(s.poll_export_initial_s, s.poll_factor, s.poll_export_cap_s, s.poll_export_deadline_s),
        activation_poll=PollSchedule(
            s.poll_activation_initial_s, s.poll_factor, s.poll_activation_cap_s, s.poll_activation_deadline_s
        ),
        poll_jitter=s.poll_jitter,
        quota_adhoc=s.quota_adhoc_per_day,
        quota_segment_jobs=s.quota_segment_jobs_per_day,
        reservation_ttl_s=s.quota_reservation_ttl_s,
        audience_lock_ttl_s=s.audience_lock_ttl_s,
    )


def token_provider(s: Settings, client: redis.Redis) -> TokenProvider:
    s.require_aep()
    if s.aep_access_token is not None:
        return StaticToken(s.aep_access_token)
    assert s.aep_client_id and s.aep_client_secret
    return IMSTokenProvider(
        ims_url=s.aep_ims_url,
        client_id=s.aep_client_id,
        client_secret=s.aep_client_secret,
        scopes=s.aep_scopes,
        redis_client=client,
        prefix=s.aep_key_prefix,
        timeout=(s.aep_connect_timeout_s, s.aep_read_timeout_s),
    )


def build_client(s: Settings, client: redis.Redis) -> AEPClient:
    s.require_aep()
    assert s.aep_client_id and s.aep_org_id
    return AEPClient(
        s.aep_base_url,
        tokens=token_provider(s, client),
        api_key=s.aep_client_id,
        org_id=s.aep_org_id,
        sandbox=s.aep_sandbox_name,
        session=make_session(),
        timeout=(s.aep_connect_timeout_s, s.aep_read_timeout_s),
    )


def build_runtime(s: Settings) -> Runtime:
    client = redis_from_url(s.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
    window = s.quota_window_s
    return Runtime(
        settings=s,
        redis=client,
        ledger=RunLedger(client, s.aep_key_prefix, ttl_s=s.run_record_ttl_s),
        quotas=RedisQuotaLedger(client, s.aep_key_prefix, window_s=window),
        locks=AudienceLocks(client, s.aep_key_prefix),
        # A pump that dies mid-publish leaves a lease; keep it within one redelivery delay.
        delays=RedisDelayQueue(client, s.aep_key_prefix, lease_s=max(5.0, min(60.0, s.visibility_timeout_s))),
    )


_runtime: Runtime | None = None
_runtime_pid: int | None = None
_settings_override: Settings | None = None


def configure(settings: Settings | None) -> None:
    """Use ``settings`` instead of the environment in this process (tests, the demo, the CLI)."""
    global _settings_override, _runtime
    _settings_override = settings
    _runtime = None


def current_settings() -> Settings:
    """The settings this process runs with: those given to :func:`configure`, else the environment's."""
    return _settings_override or get_settings()


def runtime() -> Runtime:
    """This process's runtime, rebuilt after a fork."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        _runtime = build_runtime(current_settings())
        _runtime_pid = os.getpid()
    return _runtime

"""The per-process runtime a task needs: Redis, the ledgers and (lazily) the AEP client.

Built on first use in each process, so a prefork child builds its own connections after the fork.
This module and the entry points are the only places that read settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from aep_activator.aep.api.auth import IMSTokenProvider, StaticToken, TokenProvider
from aep_activator.aep.api.client import AEPClient, make_session
from aep_activator.aep.coordination.carriers import Carriers
from aep_activator.aep.coordination.durations import DurationSummary
from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.locks import AudienceLocks
from aep_activator.aep.coordination.quota import QuotaLedger
from aep_activator.aep.coordination.redis_url import redis_from_url
from aep_activator.aep.coordination.runs import RunLedger, RunRecord
from aep_activator.aep.coordination.tokens import RedisTokenCache
from aep_activator.aep.pipeline.backoff import PollSchedule
from aep_activator.aep.pipeline.plan import PLAN, Plan
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.scopes import QuotaLimits
from aep_activator.aep.pipeline.steps.base import StepConfig
from aep_activator.aep.pipeline.steps.dataflows import DataflowCache
from aep_activator.config.settings import Settings, get_settings

LEASE_SLACK_S = 2.0
"""A step's lease outlives its hard time limit by this much, so the step is surely dead when it ends:
Celery kills it at the limit, counted from the task's start, which precedes the lease's start."""


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    keys: Keys
    ledger: RunLedger
    quotas: QuotaLedger
    locks: AudienceLocks
    carriers: Carriers
    plan: Plan
    durations: DurationSummary | None = None
    """Recent job durations for adaptive polls (None with ``POLL_ADAPTIVE=false``)."""
    dataflows: DataflowCache = field(default_factory=DataflowCache)
    """What each dataflow maps, as this process last read it (the preflight before an activation)."""
    _client: AEPClient | None = field(default=None, repr=False)

    @property
    def client(self) -> AEPClient:
        """The AEP client of the default sandbox (``AEP_SANDBOX_NAME``)."""
        if self._client is None:
            self._client = build_client(self.settings, self.redis)
        return self._client

    def client_for(self, sandbox: str | None) -> AEPClient:
        """The client whose calls name ``sandbox`` (one token and one connection pool for every sandbox)."""
        if not sandbox or sandbox == self.settings.aep_sandbox_name:
            return self.client
        return self.client.with_options(sandbox=sandbox)

    @property
    def lease_s(self) -> float:
        return self.settings.task_time_limit_s + LEASE_SLACK_S

    @property
    def step_config(self) -> StepConfig:
        return step_config(self.settings)

    def locks_for(self, sandbox: str | None) -> AudienceLocks:
        """The audience locks of ``sandbox`` (a request's; None: the deployment's default sandbox)."""
        return self.locks.for_sandbox(sandbox or self.settings.aep_sandbox_name)

    def lock_keys(self, record: RunRecord) -> list[str]:
        """The audience lock keys a run may hold: the run ledger frees them when the run ends."""
        try:
            req = ActivationRequest.model_validate(record.request)
        except ValueError:
            return []
        return self.locks_for(req.sandbox).keys(req.audiences)

    def queue_keys(self) -> list[str]:
        """The broker queue's Redis lists (kombu: the queue name and one per priority step)."""
        q = self.settings.aep_queue
        return [q, *(f"{q}\x06\x16{p}" for p in (3, 6, 9))]


def step_config(s: Settings) -> StepConfig:
    return StepConfig(
        org_id=s.aep_org_id or "",
        client_id=s.aep_client_id or "",
        sandbox=s.aep_sandbox_name,
        segment_poll=PollSchedule(
            s.poll_segment_initial_s, s.poll_factor, s.poll_segment_cap_s, s.poll_segment_deadline_s
        ),
        export_poll=PollSchedule(s.poll_export_initial_s, s.poll_factor, s.poll_export_cap_s, s.poll_export_deadline_s),
        activation_poll=PollSchedule(
            s.poll_activation_initial_s, s.poll_factor, s.poll_activation_cap_s, s.poll_activation_deadline_s
        ),
        poll_jitter=s.poll_jitter,
        quotas=quota_limits(s),
        audience_lock_ttl_s=s.audience_lock_ttl_s,
        look_settle_s=s.look_settle_s,
        wait_deadline_s=s.wait_deadline_s,
    )


def quota_limits(s: Settings) -> QuotaLimits:
    month, day = (int(x) for x in s.quota_year_start.split("-"))
    return QuotaLimits(
        adhoc_per_day=s.quota_adhoc_per_day,
        segment_jobs_per_day=s.quota_segment_jobs_per_day,
        window_s=s.quota_window_s,
        segment_jobs_per_year={
            "production": s.quota_segment_jobs_per_year_production,
            "development": s.quota_segment_jobs_per_year_development,
        },
        year_start=(month, day),
        sandbox_types=s.sandbox_types,
        reserved_for_schedules=s.reserved_for_schedules,
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
        cache=RedisTokenCache(
            client, s.aep_key_prefix, client_id=s.aep_client_id, scopes=s.aep_scopes, ims_url=s.aep_ims_url,
            org_id=s.aep_org_id or "",
        ),
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


def build_runtime(s: Settings, plan: Plan | None = None, *, clock: Callable[[], float] | None = None) -> Runtime:
    """Everything a process needs for ``s``. ``clock`` replaces Redis's TIME in every script (tests only)."""
    client = redis_from_url(s.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
    keys = Keys(s.aep_key_prefix)
    return Runtime(
        settings=s,
        redis=client,
        keys=keys,
        ledger=RunLedger(client, keys, ttl_s=s.run_record_ttl_s, grace_s=s.watchdog_grace_s, clock=clock),
        quotas=QuotaLedger(client, keys, edge_s=s.quota_edge_s),
        locks=AudienceLocks(client, s.aep_key_prefix),
        carriers=Carriers(client, keys, clock=clock),
        plan=plan or _plan,
        durations=DurationSummary(client, keys, size=s.poll_summary_size) if s.poll_adaptive else None,
    )


_runtime: Runtime | None = None
_runtime_pid: int | None = None
_settings_override: Settings | None = None
_plan: Plan = PLAN


def configure(settings: Settings | None) -> None:
    """Use ``settings`` instead of the environment in this process (tests, the demo, the CLI)."""
    global _settings_override, _runtime
    _settings_override = settings
    _runtime = None


def use_plan(plan: Plan) -> None:
    """Run ``plan`` instead of the shipped one in this process (a test of an extra step)."""
    global _plan, _runtime
    _plan = plan
    _runtime = None


def current_plan() -> Plan:
    return _plan


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

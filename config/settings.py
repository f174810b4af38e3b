"""All configuration, as one typed object read once from the environment (or ``.env``).

Only entry points call :func:`get_settings`; library code takes plain arguments. Every variable is
documented in ``.env.example`` and the README. Invalid values fail at start-up with one message that
names every bad variable and why, and never echoes a value (it could be a secret).
"""

from __future__ import annotations

import calendar
import re
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aep_activator.config.validation import describe_validation_error, env_var

DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"
REDIS_SCHEMES = ("redis", "rediss", "sentinel")
"""The schemes that all three users of ``REDIS_URL`` take: kombu's broker transports, Celery's result
backends and redis-py (the ledgers). ``unix://`` and ``sentinels://`` are refused with a reason: redis-py
reads them, but neither kombu nor Celery has a transport or backend by those names, so a worker would
fail at its start."""
_UNSERVED_SCHEMES = {
    "unix": "a Unix socket has no broker transport by that name in kombu (nor a result backend in Celery)",
    "sentinels": "TLS to the Sentinel master has no broker transport by that name in kombu (nor a result "
    "backend in Celery); use sentinel://",
}


class SettingsError(ValueError):
    """Configuration is missing or invalid. ``str()`` names every bad variable."""


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL such as https://platform.adobe.io")
    return value.rstrip("/")


def _redis_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if scheme in _UNSERVED_SCHEMES:
        raise ValueError(f"{scheme}:// is not supported: {_UNSERVED_SCHEMES[scheme]}")
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"must start with one of {', '.join(s + '://' for s in REDIS_SCHEMES)}")
    return value


def mask_url_password(url: str) -> str:
    """``url`` with the password of its userinfo (``redis://:secret@host``) replaced by ``**********``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:**********@{host}"))


API_KEY_ENTRY = re.compile(r"[A-Za-z0-9_.-]{1,64}:(producer|ops):[0-9a-fA-F]{64}")
HttpUrlStr = Annotated[str, AfterValidator(_http_url)]
RedisUrl = Annotated[str, AfterValidator(_redis_url)]
Seconds = Annotated[float, Field(gt=0)]


class Settings(BaseSettings):
    """Environment variables are the field names in upper case (``AEP_BASE_URL`` …)."""

    # env_ignore_empty: a blank ``VAR=`` (as in a copied ``.env.example``) means "not set", so it takes
    # the default instead of failing min_length, and a blank secret does not count as a credential.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
        env_ignore_empty=True,
    )

    # --- AEP and IMS ---------------------------------------------------------------------------
    aep_base_url: HttpUrlStr = "https://platform.adobe.io"
    aep_ims_url: HttpUrlStr = "https://ims-na1.adobelogin.com"
    aep_client_id: str | None = Field(default=None, min_length=1)
    aep_client_secret: SecretStr | None = None
    aep_org_id: str | None = Field(default=None, min_length=1)
    aep_sandbox_name: str | None = Field(default=None, min_length=1, pattern=r"^[a-z0-9-]+$")
    # Optional allow-list of sandbox names a request may name (comma-separated); others are refused at enqueue.
    aep_sandboxes: str | None = Field(default=None, pattern=r"^[a-z0-9-]+(,[a-z0-9-]+)*$")
    # Each sandbox's type, which sets its yearly segment-job limit: "prod:production,dev:development".
    aep_sandbox_types: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]+:(production|development)(,[a-z0-9-]+:(production|development))*$"
    )
    aep_scopes: str = Field(default=DEFAULT_SCOPES, min_length=1)
    aep_access_token: SecretStr | None = None
    aep_connect_timeout_s: Seconds = 5.0
    aep_read_timeout_s: Seconds = 30.0

    # --- Redis ----------------------------------------------------------------------------------
    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    aep_key_prefix: str = Field(default="aep:", min_length=1, pattern=r"^[A-Za-z0-9_.:{}-]+$")
    # With replicas (Sentinel): a POST's intent and quota slots must reach this many replicas (Redis WAIT)
    # within REDIS_WAIT_TIMEOUT_MS before the POST is sent, so a failover cannot forget them.
    redis_wait_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    redis_wait_timeout_ms: Annotated[int, Field(ge=1, le=60000)] = 1000

    # --- Polling (seconds; delay(n) = min(cap, initial * factor**n)) ----------------------------
    # With factor f a job is seen at most about (f - 1) x its run time after it ends: 1.1 keeps the
    # detection delay near 10 % while a 13-minute segment job costs about 13 GETs (see BENCHMARKS.md).
    poll_factor: Annotated[float, Field(ge=1, le=10)] = 1.1
    poll_jitter: Annotated[float, Field(ge=0, le=1)] = 0.2
    poll_segment_initial_s: Seconds = 30.0
    poll_segment_cap_s: Seconds = 300.0
    poll_segment_deadline_s: Seconds = 5 * 3600.0  # FAE "can take up to four hours"
    poll_export_initial_s: Seconds = 10.0
    poll_export_cap_s: Seconds = 120.0
    poll_export_deadline_s: Seconds = 3 * 3600.0
    poll_activation_initial_s: Seconds = 10.0
    poll_activation_cap_s: Seconds = 120.0
    poll_activation_deadline_s: Seconds = 6 * 3600.0
    # Adaptive polls: once POLL_SUMMARY_MIN jobs of a kind (and sandbox) have been seen done, poll rarely
    # before the shortest recent durations and densely around the likely end (aep/pipeline/adaptive.py);
    # the last POLL_SUMMARY_SIZE durations are kept in Redis, shared by every worker.
    poll_adaptive: bool = True
    poll_summary_size: Annotated[int, Field(ge=8, le=1024)] = 64
    poll_summary_min: Annotated[int, Field(ge=1, le=1024)] = 8

    # --- Error retries (separate budget from polls) --------------------------------------------
    retry_max: Annotated[int, Field(ge=0, le=100)] = 8
    retry_initial_s: Seconds = 2.0
    retry_cap_s: Seconds = 300.0

    # --- Quotas (per UTC day unless quota_window_s says otherwise) -----------------------------
    quota_adhoc_per_day: Annotated[int, Field(ge=0)] = 20  # the tutorial: "up to 20 activation jobs per day"
    quota_segment_jobs_per_day: Annotated[int, Field(ge=0)] = 2  # FAE guardrail: 2 per sandbox per day
    quota_window_s: Annotated[int, Field(ge=1, le=86400)] = 86400
    # Flexible Audience Evaluation: 50 a year per production sandbox, 100 per development sandbox.
    quota_segment_jobs_per_year_production: Annotated[int, Field(ge=0)] = 50
    quota_segment_jobs_per_year_development: Annotated[int, Field(ge=0)] = 100
    quota_year_start: str = Field(default="01-01", pattern=r"^\d{2}-\d{2}$", description="MM-DD, 00:00 UTC")
    # Slots held back for beat schedules, per quota ("adhoc:2,segment_jobs:1"): producer runs cannot spend them.
    quota_reserved_for_schedules: str | None = Field(
        default=None, pattern=r"^(adhoc|segment_jobs):\d+(,(adhoc|segment_jobs):\d+)*$"
    )
    # A slot spent within this long of a window boundary counts in both windows: AEP's clock is not ours.
    quota_edge_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    audience_lock_ttl_s: Seconds = 8 * 3600.0

    # How often beat reconciles the quota ledger with the segment jobs AEP counts (0: never).
    reconcile_interval_s: Annotated[float, Field(ge=0)] = 900.0

    # --- Exactly-once and recovery ---------------------------------------------------------------
    # After a POST whose answer was lost, AEP's lists must still not show its job this long after it was
    # sent before the step may POST again (the proof of non-acceptance, aep/pipeline/steps/looks.py).
    look_settle_s: Seconds = 120.0
    # A stranded run (a lost wake-up message, a dead execution) moves again within this long of the
    # moment its carrier was due (aep/coordination/carriers.py).
    watchdog_grace_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    # How long a run may wait for audiences that another run, or AEP, holds before it fails.
    wait_deadline_s: Seconds = 6 * 3600.0

    # --- Celery ---------------------------------------------------------------------------------
    visibility_timeout_s: Seconds = 900.0
    # One step makes a few HTTP calls, each bounded by the AEP timeouts: two minutes is ample, and it
    # bounds how long a step that died holds its run before the watchdog publishes it again.
    task_time_limit_s: Seconds = 120.0
    result_expires_s: Seconds = 7 * 86400.0
    run_record_ttl_s: Seconds = 30 * 86400.0
    delay_pump_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    aep_queue: str = Field(default="aep-activator", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")

    # --- Flower -----------------------------------------------------------------------------------
    flower_basic_auth: SecretStr | None = None
    flower_address: str = "127.0.0.1"
    flower_port: Annotated[int, Field(ge=1, le=65535)] = 5555
    flower_db: str = ".flower/flower.db"

    # --- Schedules --------------------------------------------------------------------------------
    aep_schedules_file: str = "config/schedules.toml"

    # --- HTTP API and run console (aep-activator api) -----------------------------------------
    # Comma-separated name:role:sha256hex (role producer or ops; the SHA-256 of the key, never the key).
    api_keys: SecretStr | None = None
    api_address: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000

    # --- Completion callbacks -----------------------------------------------------------------
    # Comma-separated host names a request's callback_url may name; empty: callbacks are refused.
    callback_hosts: str = ""
    callback_secret: SecretStr | None = None
    callback_timeout_s: Seconds = 10.0
    callback_retry_max: Annotated[int, Field(ge=0, le=50)] = 8
    callback_retry_initial_s: Seconds = 5.0

    # --- Logs -------------------------------------------------------------------------------------
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _timeouts_fit(self) -> Settings:
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError("VISIBILITY_TIMEOUT_S must be above TASK_TIME_LIMIT_S, or Redis redelivers running tasks")
        if self.poll_adaptive and self.poll_summary_min > self.poll_summary_size:
            raise ValueError(
                f"POLL_SUMMARY_MIN ({self.poll_summary_min}) must be at most POLL_SUMMARY_SIZE "
                f"({self.poll_summary_size}): a summary never holds more, so polls would never adapt"
            )
        month, day = (int(x) for x in self.quota_year_start.split("-"))
        if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2023, month)[1]:  # 2023: no 29 February
            raise ValueError(f"QUOTA_YEAR_START {self.quota_year_start!r} is not a day that exists every year (MM-DD)")
        limits = {"adhoc": self.quota_adhoc_per_day, "segment_jobs": self.quota_segment_jobs_per_day}
        for quota, held in self.reserved_for_schedules.items():
            if held > limits[quota]:
                raise ValueError(
                    f"QUOTA_RESERVED_FOR_SCHEDULES holds back {held} {quota} slots, more than the daily limit "
                    f"{limits[quota]}"
                )
        if self.aep_sandboxes and self.aep_sandbox_name and self.aep_sandbox_name not in self.sandboxes:
            raise ValueError(f"AEP_SANDBOX_NAME {self.aep_sandbox_name!r} is not in AEP_SANDBOXES")
        post_timeout = self.aep_connect_timeout_s + self.aep_read_timeout_s
        if self.look_settle_s < post_timeout:
            raise ValueError(
                f"LOOK_SETTLE_S ({self.look_settle_s:g}) must be at least AEP_CONNECT_TIMEOUT_S + AEP_READ_TIMEOUT_S "
                f"({post_timeout:g}): a POST that AEP accepted may not be in its lists sooner, and the step would "
                "POST again"
            )
        if self.api_keys is not None:
            for i, entry in enumerate(self.api_keys.get_secret_value().split(","), 1):
                if not API_KEY_ENTRY.fullmatch(entry.strip()):
                    raise ValueError(f"API_KEYS: entry {i} must look like name:producer|ops:<64 hex digits of SHA-256>")
        if self.callback_host_list and self.callback_secret is None:
            raise ValueError("CALLBACK_SECRET: required when CALLBACK_HOSTS is set (callbacks are signed)")
        if self.flower_basic_auth is not None:
            user, sep, password = self.flower_basic_auth.get_secret_value().partition(":")
            if not (user and sep and password):
                raise ValueError("FLOWER_BASIC_AUTH must look like user:password")
        return self

    @property
    def sandboxes(self) -> tuple[str, ...]:
        """The allow-list of sandbox names (empty: any sandbox the credential can see)."""
        return tuple(self.aep_sandboxes.split(",")) if self.aep_sandboxes else ()

    @property
    def sandbox_types(self) -> dict[str, str]:
        return dict(pair.split(":", 1) for pair in self.aep_sandbox_types.split(",")) if self.aep_sandbox_types else {}

    @property
    def reserved_for_schedules(self) -> dict[str, int]:
        pairs = self.quota_reserved_for_schedules.split(",") if self.quota_reserved_for_schedules else []
        return {q: int(n) for q, _, n in (p.partition(":") for p in pairs)}

    @property
    def callback_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.callback_hosts.split(",") if h.strip()]

    def aep_problems(self) -> list[str]:
        """What is missing to call AEP: an empty list means the credentials are complete."""
        problems = []
        if not self.aep_client_id:
            problems.append("AEP_CLIENT_ID: required (the API key / OAuth client id)")
        if not self.aep_org_id:
            problems.append("AEP_ORG_ID: required (the IMS org id, …@AdobeOrg)")
        if self.aep_access_token is None and self.aep_client_secret is None:
            problems.append("AEP_CLIENT_SECRET: required unless AEP_ACCESS_TOKEN is set")
        return problems

    def require_aep(self) -> Settings:
        if problems := self.aep_problems():
            raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems))
        return self

    def masked(self) -> dict[str, Any]:
        """Every setting by environment variable name, secrets shown as ``**********``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********" if value.get_secret_value() else ""
            elif name == "redis_url":
                value = mask_url_password(value)  # REDIS_URL may carry a password
            out[name.upper()] = value
        return out

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if name == "redis_url" else value


REMOVED = {
    "QUOTA_RESERVATION_TTL_S": "a quota slot is now spent when its POST is sent and never lapses",
}
"""Variables that earlier versions read, and why they are gone (the start-up checks warn about them)."""


def removed_settings_in_use() -> list[str]:
    """One line per removed variable still set in the environment."""
    import os

    return [f"{name} is no longer used: {why}; unset it" for name, why in REMOVED.items() if name in os.environ]


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raise :class:`SettingsError` naming every problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        message = describe_validation_error(exc, "invalid configuration", where=env_var, empty="SETTINGS")
        raise SettingsError(message) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. For entry points only."""
    return load_settings()

"""``SimulatorConfig``: every knob of the simulator in one validated model (unknown keys are rejected).

A leaf shared by the three layers (``state``, ``api``, ``http``); it imports nothing of the simulator.

Durations are in *real-AEP* seconds and are divided by ``speed``: with ``speed=600`` a 13-minute
segment job takes about 1.3 s. A job's timeline is fixed when it is created, so changing ``speed``
at run time affects new jobs only. Failure rates are probabilities in [0, 1] drawn from
``random.Random(seed)``, so a fixed seed gives the same outcomes for the same sequence of requests.

``durations.sigma`` > 0 draws each job's total duration from a log-normal distribution whose median
is the configured duration (issue 13: AEP documents only "up to four hours" for a segment job), from
a generator of its own (``seed + 3``), so the spread never shifts ids, outcomes or fault draws.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Durations(_Strict):
    """Real-AEP durations in seconds (before dividing by ``speed``)."""

    segment_job_new_s: float = Field(default=5.0, ge=0)
    segment_job_queued_s: float = Field(default=60.0, ge=0, description="time spent QUEUED after NEW")
    segment_job_total_s: float = Field(default=780.0, gt=0, description="creation to terminal, ~13 min")
    export_job_new_s: float = Field(default=5.0, ge=0)
    export_job_total_s: float = Field(default=300.0, gt=0, description="creation to terminal, ~5 min")
    activation_run_s: float = Field(default=180.0, gt=0, description="ad-hoc flow run, ~3 min")
    cancel_s: float = Field(default=10.0, ge=0, description="CANCELLING to CANCELLED")
    scheduled_run_s: float = Field(default=180.0, gt=0, description="a scheduled (not ad-hoc) export run")
    sigma: float = Field(
        default=0.0,
        ge=0,
        le=3,
        description="log-normal spread of each job's total duration on the log scale; 0 = fixed durations",
    )


class FailureRates(_Strict):
    """Probability that a job of each kind ends FAILED / failed."""

    segment_job: float = Field(default=0.0, ge=0, le=1)
    export_job: float = Field(default=0.0, ge=0, le=1)
    activation_run: float = Field(default=0.0, ge=0, le=1)


class Guardrails(_Strict):
    """AEP limits the simulator enforces; see aep-api.md §8."""

    adhoc_jobs_per_day_per_org: int = Field(default=20, ge=0, description="tutorial: 20 activation jobs/day")
    segment_jobs_per_day_per_sandbox: int = Field(default=2, ge=0, description="FAE: 2 per sandbox per day")
    max_audiences_per_adhoc_job: int = Field(default=80, ge=1)
    max_segments_per_segment_job: int = Field(default=20, ge=1)
    segment_jobs_per_year_production: int = Field(default=50, ge=0, description="FAE: 50 per production sandbox")
    segment_jobs_per_year_development: int = Field(default=100, ge=0, description="FAE: 100 per development sandbox")
    quota_year_start: str = Field(
        default="01-01", description="MM-DD the yearly window opens (the contract anniversary); UTC"
    )

    @field_validator("quota_year_start")
    @classmethod
    def _month_day(cls, value: str) -> str:
        month, sep, day = value.partition("-")
        ok = bool(sep) and len(month) == len(day) == 2 and (month + day).isascii() and (month + day).isdigit()
        try:
            # A non-leap year: 02-29 would open a window only every fourth year.
            ok = ok and date(2001, int(month), int(day)) is not None
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"quota_year_start must be a calendar day as MM-DD (e.g. 01-01), got {value!r}")
        return value

    def segment_jobs_per_year(self, sandbox_type: str) -> int:
        """The yearly FAE limit of a sandbox of ``sandbox_type`` (only ``production`` gets the lower one)."""
        if sandbox_type == "production":
            return self.segment_jobs_per_year_production
        return self.segment_jobs_per_year_development


class ListSettings(_Strict):
    """How the list endpoints order and page (issue 10 item 7): AEP's other documented orders and
    smaller pages, so look-before-create can be tested against both. A request's own ``sort`` /
    ``orderby`` wins over these defaults; a ``limit`` above a page size is served as that page size
    (with a next link), never refused, since a client cannot know the server's page size."""

    segment_jobs_sort: Literal["creationTime:desc", "creationTime:asc"] = Field(
        default="creationTime:desc", description="order when the request sends no `sort`"
    )
    segment_jobs_page_size: int = Field(default=1000, ge=1, le=1000)
    export_jobs_page_size: int = Field(default=1000, ge=1, le=1000)
    flow_runs_orderby: str = Field(
        default="-updatedAt",
        pattern=r"^[+-]?[A-Za-z_][\w.\[\]]*(,[+-]?[A-Za-z_][\w.\[\]]*)*$",
        description="order when the request sends no `orderby` (S-DEST-YAML: most recently created or updated first)",
    )
    flow_runs_page_size: int = Field(default=100, ge=1, le=100, description="S-DEST-YAML: at most 100 per page")


class FaultSettings(_Strict):
    """Injected faults for one endpoint (or all AEP endpoints). Rates are per request."""

    error_5xx_rate: float = Field(default=0.0, ge=0, le=1, description="answer 500/502/503")
    rate_429: float = Field(default=0.0, ge=0, le=1, description="answer gateway 429 with Retry-After")
    retry_after_s: int = Field(default=1, ge=0)
    latency_ms: float = Field(default=0.0, ge=0, description="added before handling")
    latency_jitter_ms: float = Field(default=0.0, ge=0, description="uniform extra 0..jitter")
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="close the connection, nothing processed")
    hang_rate: float = Field(default=0.0, ge=0, le=1, description="process, then never answer (hang_s)")

    def is_quiet(self) -> bool:
        return not (
            self.error_5xx_rate
            or self.rate_429
            or self.latency_ms
            or self.latency_jitter_ms
            or self.drop_rate
            or self.hang_rate
        )


class SimulatorConfig(_Strict):
    """Everything configurable. ``None`` credentials mean "take them from the fixture"."""

    speed: float = Field(default=1.0, gt=0)
    seed: int | None = None
    durations: Durations = Field(default_factory=Durations)
    failure_rates: FailureRates = Field(default_factory=FailureRates)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    lists: ListSettings = Field(default_factory=ListSettings)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    endpoint_faults: dict[str, FaultSettings] = Field(
        default_factory=dict,
        description='per "METHOD /path/template", e.g. "POST /data/core/ups/segment/jobs"; replaces `faults`',
    )
    hang_s: float = Field(default=30.0, ge=0, description="accept-then-timeout: hold this long, then close")
    fixture_path: str | None = None
    client_credentials: dict[str, str] | None = Field(default=None, description="client_id -> client_secret")
    org_ids: list[str] | None = None
    static_token: str | None = Field(default="sim-static-token", description="a bearer token always valid")
    token_expires_in_s: int = Field(default=86399, gt=0)
    public_base_url: str | None = Field(default=None, description="base of statusURL; default: request Host")


def merge_config(current: SimulatorConfig, patch: dict[str, Any]) -> SimulatorConfig:
    """``current`` with ``patch`` deep-merged in; raises ``pydantic.ValidationError`` on unknown keys."""
    return SimulatorConfig.model_validate(_deep_merge(current.model_dump(), patch))


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        # Nested objects merge key by key, so a patch can change one field of one section.
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out

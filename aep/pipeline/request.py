"""``ActivationRequest``: what a producer asks for. Validated before anything is enqueued."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from aep_activator.aep.api.models import (
    MAX_SEGMENTS_PER_ON_DEMAND_JOB,
    ActivationInfo,
    ExportJobCreate,
    Id,
    audiences_of,
    check_audience_count,
)
from aep_activator.config.validation import describe_validation_error

__all__ = ["ActivationRequest", "describe_validation_error"]

IdempotencyKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _callback_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://hooks.example.com/aep")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials (the POST is signed with CALLBACK_SECRET instead)")
    return value


CallbackUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_callback_url)]


class ActivationRequest(BaseModel):
    """One activation run: optional segment job → optional export job → ad-hoc activation.

    The default follows the tutorial: a segment job, an export job, then a v1 ad-hoc run with the
    export id. ``version=2`` drops the export step (Adobe's v2 flow needs no export job), and
    ``segment_job=False`` skips on-demand evaluation and activates the latest results.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    activation_info: ActivationInfo = Field(validation_alias=AliasChoices("activation_info", "activationInfo"))
    segment_ids: list[Id] = Field(
        default_factory=list,
        description="segments for the on-demand segment job; default: the audiences of activation_info",
    )
    segment_job: bool = True
    export_job: ExportJobCreate | None = Field(
        default=None, description="the export job body (v1 only); required for v1"
    )
    version: Literal[1, 2] = 1
    on_quota: Literal["wait", "fail"] = "wait"
    idempotency_key: IdempotencyKey | None = None
    sandbox: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9-]+$")] | None = Field(
        default=None, description="the AEP sandbox (x-sandbox-name); default: AEP_SANDBOX_NAME, set at enqueue"
    )
    started_by: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        default="python",
        description="who started the run, as the timeline and the console show it: the CLI records 'cli', the "
        "HTTP API 'api:<key name>', beat 'schedule:<name>', an activation.start message 'send_task'",
    )
    callback_url: CallbackUrl | None = Field(
        default=None,
        description="POSTed the run's terminal status, signed with HMAC-SHA256; its host must be in CALLBACK_HOSTS",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ActivationRequest:
        try:
            check_audience_count(self.activation_info)
        except ValueError as exc:
            raise ValueError(f"activation_info: {exc}") from None
        if self.version == 1 and self.export_job is None:
            raise ValueError("export_job: required for ad-hoc v1 (the activation needs an export id)")
        if self.version == 2 and self.export_job is not None:
            raise ValueError("export_job: ad-hoc v2 takes no export job; drop it or use version 1")
        if self.segment_job:
            ids = self.segment_ids or audiences_of(self.activation_info)
            if len(ids) > MAX_SEGMENTS_PER_ON_DEMAND_JOB:
                raise ValueError(
                    f"segment_ids: {len(ids)} segments in one on-demand segment job; "
                    f"AEP allows at most {MAX_SEGMENTS_PER_ON_DEMAND_JOB}"
                )
            if len(set(ids)) != len(ids):
                raise ValueError("segment_ids: must be unique")
        elif self.segment_ids:
            raise ValueError("segment_ids: given, but segment_job is false")
        return self

    @property
    def evaluation_segment_ids(self) -> list[str]:
        return list(self.segment_ids) or audiences_of(self.activation_info)

    @property
    def from_schedule(self) -> bool:
        """Started by a beat schedule (``started_by`` ``schedule:<name>``): it may spend held-back slots."""
        return self.started_by.startswith("schedule:")

    @property
    def audiences(self) -> list[str]:
        return audiences_of(self.activation_info)

    def wire(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

"""Wire models for the AEP APIs this system calls: shared by the client and the simulator.

Request models forbid unknown fields (a typo must not be silently dropped on a quota-burning POST);
response models ignore unknown fields (AEP adds fields without notice). Statuses are closed
``StrEnum`` types with named terminal sets, so a poll reads ``if job.status in SEGMENT_JOB_TERMINAL``.

Sources (see ``shared/reference/aep-api.md``):
- segment jobs: https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/api/segment-jobs
- export jobs: https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/api/export-jobs
- ad-hoc activation: https://experienceleague.adobe.com/en/docs/experience-platform/destinations/api/ad-hoc-activation-api
- flow runs: https://developer.adobe.com/experience-platform-apis/references/destinations/

Where the docs disagree the models accept both forms: ``datasetId``/``dataSetId``, a segment status of
``"exited"`` or ``["exited"]``, capitalised or lowercase flow-run statuses, export ids as numbers or strings.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_AUDIENCES_PER_ADHOC_JOB = 80
"""Hard limit: "Attempting to activate more than 80 audiences per job will cause the job to fail"."""

MAX_SEGMENTS_PER_ON_DEMAND_JOB = 20
"""Flexible audience evaluation: "a maximum of 20 segment definition IDs per segment job API call"."""

ADHOC_V2_ACCEPT = "application/vnd.adobe.adhoc.activation+json; version=2"

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
"""An AEP id: an opaque, non-empty string."""


def _opaque_id(value: Any) -> Any:
    # Export job ids are numbers in every example but strings in v1 `exportIds` examples: treat as opaque.
    if isinstance(value, bool):
        raise ValueError("an id must be a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    return value


OpaqueId = Annotated[Id, BeforeValidator(_opaque_id)]


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
"""RFC 3339 ``date-time``: full date, ``T``, full time with seconds, and an explicit offset."""


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2018-01-01T00:00:00Z")
    text = value.strip()
    # The shape check comes first: datetime.fromisoformat also takes ISO 8601 forms that RFC 3339
    # does not (week dates "2018-W01-1T…", "T00:00" without seconds, "+0500" offsets).
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp (e.g. 2018-01-01T00:00:00Z)")
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp: {exc}") from None
    return text


Rfc3339 = Annotated[str, BeforeValidator(_rfc3339)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------------------------------
# Statuses


class SegmentJobStatus(StrEnum):
    NEW = "NEW"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    SUCCEEDED = "SUCCEEDED"


SEGMENT_JOB_TERMINAL = frozenset({SegmentJobStatus.SUCCEEDED, SegmentJobStatus.FAILED, SegmentJobStatus.CANCELLED})


class ExportJobStatus(StrEnum):
    NEW = "NEW"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    # Not in the documented enum; cancelled export jobs are undocumented (aep-api.md §12.5).
    # The simulator reports these after a DELETE, and the client must understand them.
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


EXPORT_JOB_TERMINAL = frozenset({ExportJobStatus.SUCCEEDED, ExportJobStatus.FAILED, ExportJobStatus.CANCELLED})


class FlowRunStatus(StrEnum):
    SUCCESS = "success"
    PROCESSING = "processing"
    WAITING = "waiting"
    FAILED = "failed"
    CANCELLED = "cancelled"


FLOW_RUN_TERMINAL = frozenset({FlowRunStatus.SUCCESS, FlowRunStatus.FAILED, FlowRunStatus.CANCELLED})

SegmentStatusFilter = Literal["realized", "existing", "exited"]


# --------------------------------------------------------------------------------------------------
# IMS


class TokenResponse(_Response):
    access_token: str = Field(min_length=1, repr=False)
    token_type: str = "bearer"
    expires_in: int = Field(gt=0, description="seconds (IMS /ims/token/v3)")


# --------------------------------------------------------------------------------------------------
# Segment jobs


class SegmentJobRequestItem(_Request):
    segmentId: Id


class SegmentJobCreate(_Request):
    """The array body of ``POST /segment/jobs``: ``[{"segmentId": …}, …]``."""

    segments: list[SegmentJobRequestItem] = Field(min_length=1)

    @classmethod
    def of(cls, segment_ids: list[str]) -> SegmentJobCreate:
        return cls(segments=[SegmentJobRequestItem(segmentId=s) for s in segment_ids])

    @field_validator("segments")
    @classmethod
    def _unique(cls, v: list[SegmentJobRequestItem]) -> list[SegmentJobRequestItem]:
        ids = [s.segmentId for s in v]
        if len(set(ids)) != len(ids):
            raise ValueError("segment ids must be unique")
        return v

    def wire(self) -> list[dict[str, str]]:
        return [s.model_dump() for s in self.segments]


class Sandbox(_Response):
    sandboxId: str | None = None
    sandboxName: str | None = None
    type: str | None = None
    default: bool | None = None


class PqlExpression(_Response):
    type: str | None = None
    format: str | None = None
    value: str | None = None


class MergePolicyRef(_Response):
    id: str | None = None
    version: int | None = None


class SegmentDefinition(_Response):
    id: str | None = None
    expression: PqlExpression | None = None
    mergePolicyId: str | None = None
    mergePolicy: MergePolicyRef | None = None


class SegmentJobSegment(_Response):
    segmentId: Id
    segment: SegmentDefinition | None = None


class TimeSpan(_Response):
    startTimeInMs: int | None = None
    endTimeInMs: int | None = None
    totalTimeInMs: int | None = None


class SegmentJobMetrics(_Response):
    totalTime: TimeSpan | None = None
    profileSegmentationTime: TimeSpan | None = None
    totalProfiles: int | None = None
    segmentedProfileCounter: dict[str, int] | None = None
    segmentedProfileByNamespaceCounter: dict[str, dict[str, int]] | None = None
    segmentedProfileByStatusCounter: dict[str, dict[str, int]] | None = None
    totalProfilesByMergePolicy: dict[str, int] | None = None


class JobError(_Response):
    code: str | None = None
    msg: str | None = None
    callStack: str | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, v: Any) -> Any:
        # The spec's example has `code: 8.0000018E7` (a number).
        return v if v is None or isinstance(v, str) else str(v)


class Link(_Response):
    href: str | None = None
    method: str | None = None


class SchemaRef(_Response):
    name: str | None = None


class SegmentJob(_Response):
    id: Id
    status: SegmentJobStatus
    imsOrgId: str | None = None
    sandbox: Sandbox | None = None
    profileInstanceId: str | None = None
    source: str | None = None
    segments: list[SegmentJobSegment] = Field(default_factory=list)
    metrics: SegmentJobMetrics | None = None
    errors: list[JobError] = Field(default_factory=list)
    batchId: str | None = None
    computeJobId: int | None = None
    computeGatewayJobId: str | None = None
    requestId: str | None = None
    schema_: SchemaRef | None = Field(default=None, alias="schema")
    links: dict[str, Link] | None = Field(default=None, alias="_links")
    properties: dict[str, Any] | None = None
    creationTime: int | None = Field(default=None, description="Unix ms")
    updateTime: int | None = Field(default=None, description="Unix ms")
    updateEpoch: int | None = Field(default=None, description="Unix s")

    @property
    def segment_ids(self) -> list[str]:
        return [s.segmentId for s in self.segments]


class PageInfo(_Response):
    totalCount: int | None = None
    pageSize: int | None = None


class SegmentJobList(_Response):
    page: PageInfo | None = Field(default=None, alias="_page")
    children: list[SegmentJob] = Field(default_factory=list)
    links: dict[str, Any] | None = Field(default=None, alias="_links")

    @property
    def has_next(self) -> bool:
        """``_links.next.href`` is a non-empty link (``{}`` or ``""`` on the last page)."""
        nxt = (self.links or {}).get("next")
        return bool(nxt.get("href")) if isinstance(nxt, dict) else bool(nxt)


class CancelResponse(_Response):
    status: bool | None = None
    message: str | None = None


# --------------------------------------------------------------------------------------------------
# Export jobs


_DEFAULT_STATUS: list[SegmentStatusFilter] = ["realized", "existing"]


class ExportSegmentFilter(_Request):
    segmentId: Id
    segmentNs: str = "ups"
    status: list[SegmentStatusFilter] = Field(default_factory=lambda: _DEFAULT_STATUS.copy(), min_length=1)

    @field_validator("status", mode="before")
    @classmethod
    def _status_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class QualificationTime(_Request):
    startTime: Rfc3339 | None = None
    endTime: Rfc3339 | None = None


class ExportFilter(_Request):
    segments: list[ExportSegmentFilter] | None = Field(default=None, min_length=1)
    segmentQualificationTime: QualificationTime | None = None
    fromIngestTimestamp: Rfc3339 | None = None
    emptyProfiles: bool | None = None


class EventListFilter(_Request):
    fromIngestTimestamp: Rfc3339 | None = None
    toIngestTimestamp: Rfc3339 | None = None


class EventList(_Request):
    fields: str | None = None
    filter: EventListFilter | None = None


class AdditionalFields(_Request):
    eventList: EventList | None = None


class ExportDestination(_Request):
    datasetId: Id = Field(validation_alias=AliasChoices("datasetId", "dataSetId"))
    segmentPerBatch: bool = False


class SchemaName(_Request):
    name: Id


class MergePolicy(_Request):
    id: Id
    version: int | None = Field(default=None, ge=1)


class EvaluationInfo(_Request):
    segmentation: bool = False


class ExportJobCreate(_Request):
    """The full ``POST /export/jobs`` body from the tutorial. ``destination`` and ``schema`` are required."""

    fields: str | None = None
    mergePolicy: MergePolicy | None = None
    filter: ExportFilter | None = None
    additionalFields: AdditionalFields | None = None
    destination: ExportDestination
    schema_: SchemaName = Field(alias="schema")
    evaluationInfo: EvaluationInfo | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)

    @property
    def segment_ids(self) -> list[str]:
        return [s.segmentId for s in (self.filter.segments or [])] if self.filter else []


class ExportBatch(_Response):
    segmentId: str | None = None
    segmentNs: str | None = None
    status: list[str] | None = None
    batchId: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ExportJobDestination(_Response):
    datasetId: str | None = Field(default=None, validation_alias=AliasChoices("datasetId", "dataSetId"))
    segmentPerBatch: bool | None = None
    batchId: str | None = None
    batches: list[ExportBatch] | None = None


class ExportSegmentInfo(_Response):
    segmentId: str
    segmentNs: str | None = None
    status: list[str] | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ExportJobFilter(_Response):
    segments: list[ExportSegmentInfo] | None = None
    segmentQualificationTime: dict[str, Any] | None = None
    fromIngestTimestamp: str | None = None
    emptyProfiles: bool | None = None


class ExportJobMetrics(_Response):
    totalTime: TimeSpan | None = None
    profileExportTime: TimeSpan | None = None
    aCPDatasetWriteTime: TimeSpan | None = None
    totalExportedProfileCounter: int | None = None
    exportedProfileByNamespaceCounter: dict[str, int] | None = None


class ExportJob(_Response):
    id: OpaqueId
    status: ExportJobStatus
    jobType: str | None = None
    destination: ExportJobDestination | None = None
    fields: str | None = None
    schema_: SchemaRef | None = Field(default=None, alias="schema")
    imsOrgId: str | None = None
    filter: ExportJobFilter | None = None
    additionalFields: dict[str, Any] | None = None
    mergePolicy: MergePolicyRef | None = None
    profileInstanceId: str | None = None
    metrics: ExportJobMetrics | None = None
    errors: list[JobError] = Field(default_factory=list)
    computeGatewayJobId: dict[str, Any] | None = None
    creationTime: int | None = None
    updateTime: int | None = None
    requestId: str | None = None

    @property
    def segment_ids(self) -> list[str]:
        return [s.segmentId for s in (self.filter.segments or [])] if self.filter else []


class ExportJobPage(_Response):
    sortField: str | None = None
    sort: str | None = None
    pageOffset: str | None = None
    pageSize: int | None = None


class ExportJobList(_Response):
    records: list[ExportJob] = Field(default_factory=list)
    page: ExportJobPage | None = None
    link: dict[str, Any] | None = None

    @property
    def next_offset(self) -> str | None:
        nxt = (self.link or {}).get("next")
        if not isinstance(nxt, str) or "offset=" not in nxt:
            return None
        return nxt.split("offset=", 1)[1].split("&", 1)[0] or None


# --------------------------------------------------------------------------------------------------
# Ad-hoc activation


def _activation_info(v: Any) -> Any:
    if not isinstance(v, dict) or not v:
        raise ValueError("must be a non-empty object mapping destination (dataflow) ids to audience id lists")
    return v


ActivationInfo = Annotated[dict[Id, Annotated[list[Id], Field(min_length=1)]], BeforeValidator(_activation_info)]


def audiences_of(info: dict[str, list[str]]) -> list[str]:
    """Distinct audience ids of an ``activationInfo`` map, in first-seen order."""
    return list(dict.fromkeys(a for auds in info.values() for a in auds))


def check_audience_count(info: dict[str, list[str]]) -> None:
    n = len(audiences_of(info))
    if n > MAX_AUDIENCES_PER_ADHOC_JOB:
        raise ValueError(f"{n} audiences in one ad-hoc job; AEP allows at most {MAX_AUDIENCES_PER_ADHOC_JOB}")
    for dest, auds in info.items():
        if len(set(auds)) != len(auds):
            raise ValueError(f"destination {dest!r} lists an audience twice")


class AdhocRunV1(_Request):
    """v1 body: ``activationInfo`` and ``exportIds``. The tutorial's ``exportId`` spelling is accepted."""

    activationInfo: ActivationInfo
    exportIds: list[OpaqueId] = Field(min_length=1, validation_alias=AliasChoices("exportIds", "exportId"))

    @model_validator(mode="after")
    def _limits(self) -> AdhocRunV1:
        check_audience_count(self.activationInfo)
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump()


class AdhocRunV2(_Request):
    """v2 body (sent with ``Accept: application/vnd.adobe.adhoc.activation+json; version=2``)."""

    activationInfo: ActivationInfo

    @model_validator(mode="after")
    def _limits(self) -> AdhocRunV2:
        check_audience_count(self.activationInfo)
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump()


class AdhocOrder(_Response):
    segment: str
    order: str
    statusURL: str = Field(min_length=1)

    @property
    def run_id(self) -> str:
        return self.statusURL.rstrip("/").rsplit("/", 1)[-1]


class AdhocRunResponse(_Response):
    order: list[AdhocOrder] = Field(min_length=1)


class AdhocErrorBody(_Response):
    message: str


# --------------------------------------------------------------------------------------------------
# Flow runs


def _flow_status(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


class RunError(_Response):
    code: str | None = None
    message: str | None = None


class StatusSummary(_Response):
    status: Annotated[FlowRunStatus, BeforeValidator(_flow_status)]
    errors: list[RunError] = Field(default_factory=list)
    activityRefs: list[str] | None = None


class DurationSummary(_Response):
    startedAtUTC: int | None = None
    completedAtUTC: int | None = None


class FlowRunMetrics(_Response):
    durationSummary: DurationSummary | None = None
    sizeSummary: dict[str, Any] | None = None
    recordSummary: dict[str, Any] | None = None
    fileSummary: dict[str, Any] | None = None
    statusSummary: StatusSummary


class FlowSpecRef(_Response):
    id: str | None = None
    version: str | None = None


class FlowRun(_Response):
    id: Id
    flowId: str | None = None
    createdAt: int | None = None
    updatedAt: int | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    createdClient: str | None = None
    updatedClient: str | None = None
    sandboxId: str | None = None
    sandboxName: str | None = None
    imsOrgId: str | None = None
    flowSpec: FlowSpecRef | None = None
    providerRefId: str | None = None
    etag: str | None = None
    metrics: FlowRunMetrics
    activities: list[dict[str, Any]] | None = None

    @property
    def status(self) -> FlowRunStatus:
        return self.metrics.statusSummary.status


class FlowRunList(_Response):
    items: list[FlowRun]
    links: dict[str, Any] | None = Field(default=None, alias="_links")

    @property
    def next_token(self) -> str | None:
        """The ``continuationToken`` of ``_links.next.href``, if a next page exists."""
        nxt = (self.links or {}).get("next")
        href = nxt.get("href") if isinstance(nxt, dict) else nxt
        if not isinstance(href, str) or "continuationToken=" not in href:
            return None
        from urllib.parse import parse_qs, urlsplit

        tokens = parse_qs(urlsplit(href).query).get("continuationToken") or []
        return tokens[0] if tokens else None


# --------------------------------------------------------------------------------------------------
# Destination dataflows (S-DEST-YAML ``Batch_Flow``): only what the preflight reads


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?")  # ASCII only: str.isdigit() admits "²", which float() refuses


class SegmentSelectorValue(_Response):
    id: str | None = None
    name: str | None = None
    createTime: str | None = Field(default=None, description="epoch s: when the audience was first activated here")


class SegmentSelector(_Response):
    type: str | None = None
    value: SegmentSelectorValue | None = None


class SegmentSelectors(_Response):
    selectors: list[SegmentSelector] = Field(default_factory=list)


class TransformationParams(_Response):
    segmentSelectors: SegmentSelectors | None = None


class Transformation(_Response):
    name: str | None = None
    params: TransformationParams | None = None


class Flow(_Response):
    id: Id
    name: str | None = None
    state: str | None = None
    transformations: list[Transformation] = Field(default_factory=list)

    def mapped_audiences(self) -> dict[str, float]:
        """Audience id -> when it was first activated on this dataflow (epoch s; 0 when AEP gives no time)."""
        out: dict[str, float] = {}
        for transform in self.transformations:
            selectors = transform.params.segmentSelectors if transform.params else None
            for selector in selectors.selectors if selectors else []:
                value = selector.value
                if value is not None and value.id:
                    created = value.createTime or ""
                    out[value.id] = float(created) if _DECIMAL.fullmatch(created) else 0.0  # "²" is a digit too
        return out


class FlowList(_Response):
    items: list[Flow]

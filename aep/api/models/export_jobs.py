"""Export jobs (``/data/core/ups/export/jobs``).

https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/api/export-jobs
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    field_validator,
)

from aep_activator.aep.api.models.base import (
    Id,
    JobError,
    MergePolicyRef,
    OpaqueId,
    Rfc3339,
    SchemaRef,
    TimeSpan,
    _Request,
    _Response,
)


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


SegmentStatusFilter = Literal["realized", "existing", "exited"]


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

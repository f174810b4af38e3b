"""On-demand segment jobs (``/data/core/ups/segment/jobs``).

https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/api/segment-jobs
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import (
    Field,
    field_validator,
)

from aep_activator.aep.api.models.base import Id, JobError, MergePolicyRef, SchemaRef, TimeSpan, _Request, _Response

MAX_SEGMENTS_PER_ON_DEMAND_JOB = 20
"""Flexible audience evaluation: "a maximum of 20 segment definition IDs per segment job API call"."""


class SegmentJobStatus(StrEnum):
    NEW = "NEW"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    SUCCEEDED = "SUCCEEDED"


SEGMENT_JOB_TERMINAL = frozenset({SegmentJobStatus.SUCCEEDED, SegmentJobStatus.FAILED, SegmentJobStatus.CANCELLED})


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


class SegmentDefinition(_Response):
    id: str | None = None
    expression: PqlExpression | None = None
    mergePolicyId: str | None = None
    mergePolicy: MergePolicyRef | None = None


class SegmentJobSegment(_Response):
    segmentId: Id
    segment: SegmentDefinition | None = None


class SegmentJobMetrics(_Response):
    totalTime: TimeSpan | None = None
    profileSegmentationTime: TimeSpan | None = None
    totalProfiles: int | None = None
    segmentedProfileCounter: dict[str, int] | None = None
    segmentedProfileByNamespaceCounter: dict[str, dict[str, int]] | None = None
    segmentedProfileByStatusCounter: dict[str, dict[str, int]] | None = None
    totalProfilesByMergePolicy: dict[str, int] | None = None


class Link(_Response):
    href: str | None = None
    method: str | None = None


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

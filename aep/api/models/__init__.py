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

One module per resource (``segment_jobs``, ``export_jobs``, ``activations``, ``flow_runs``, ``flows``,
``ims``; ``base`` holds what they share); every name is re-exported here, so
``from aep_activator.aep.api.models import SegmentJob`` keeps working.
"""

from __future__ import annotations

from aep_activator.aep.api.models.activations import (
    ADHOC_V2_ACCEPT,
    MAX_AUDIENCES_PER_ADHOC_JOB,
    ActivationInfo,
    AdhocErrorBody,
    AdhocOrder,
    AdhocRunResponse,
    AdhocRunV1,
    AdhocRunV2,
    audiences_of,
    check_audience_count,
)
from aep_activator.aep.api.models.base import (
    CancelResponse,
    Id,
    JobError,
    MergePolicyRef,
    OpaqueId,
    Rfc3339,
    SchemaRef,
    TimeSpan,
)
from aep_activator.aep.api.models.export_jobs import (
    EXPORT_JOB_TERMINAL,
    AdditionalFields,
    EvaluationInfo,
    EventList,
    EventListFilter,
    ExportBatch,
    ExportDestination,
    ExportFilter,
    ExportJob,
    ExportJobCreate,
    ExportJobDestination,
    ExportJobFilter,
    ExportJobList,
    ExportJobMetrics,
    ExportJobPage,
    ExportJobStatus,
    ExportSegmentFilter,
    ExportSegmentInfo,
    MergePolicy,
    QualificationTime,
    SchemaName,
    SegmentStatusFilter,
)
from aep_activator.aep.api.models.flow_runs import (
    FLOW_RUN_TERMINAL,
    DurationSummary,
    FlowRun,
    FlowRunList,
    FlowRunMetrics,
    FlowRunStatus,
    FlowSpecRef,
    RunError,
    StatusSummary,
)
from aep_activator.aep.api.models.flows import (
    Flow,
    FlowList,
    SegmentSelector,
    SegmentSelectors,
    SegmentSelectorValue,
    Transformation,
    TransformationParams,
)
from aep_activator.aep.api.models.ims import TokenResponse
from aep_activator.aep.api.models.segment_jobs import (
    MAX_SEGMENTS_PER_ON_DEMAND_JOB,
    SEGMENT_JOB_TERMINAL,
    Link,
    PageInfo,
    PqlExpression,
    Sandbox,
    SegmentDefinition,
    SegmentJob,
    SegmentJobCreate,
    SegmentJobList,
    SegmentJobMetrics,
    SegmentJobRequestItem,
    SegmentJobSegment,
    SegmentJobStatus,
)

__all__ = [
    "ADHOC_V2_ACCEPT", "EXPORT_JOB_TERMINAL", "FLOW_RUN_TERMINAL", "MAX_AUDIENCES_PER_ADHOC_JOB",
    "MAX_SEGMENTS_PER_ON_DEMAND_JOB", "SEGMENT_JOB_TERMINAL", "ActivationInfo", "AdditionalFields",
    "AdhocErrorBody", "AdhocOrder", "AdhocRunResponse", "AdhocRunV1", "AdhocRunV2", "CancelResponse",
    "DurationSummary", "EvaluationInfo", "EventList", "EventListFilter", "ExportBatch", "ExportDestination",
    "ExportFilter", "ExportJob", "ExportJobCreate", "ExportJobDestination", "ExportJobFilter", "ExportJobList",
    "ExportJobMetrics", "ExportJobPage", "ExportJobStatus", "ExportSegmentFilter", "ExportSegmentInfo", "Flow",
    "FlowList", "FlowRun", "FlowRunList", "FlowRunMetrics", "FlowRunStatus", "FlowSpecRef", "Id", "JobError",
    "Link", "MergePolicy", "MergePolicyRef", "OpaqueId", "PageInfo", "PqlExpression", "QualificationTime",
    "Rfc3339", "RunError", "Sandbox", "SchemaName", "SchemaRef", "SegmentDefinition", "SegmentJob",
    "SegmentJobCreate", "SegmentJobList", "SegmentJobMetrics", "SegmentJobRequestItem", "SegmentJobSegment",
    "SegmentJobStatus", "SegmentSelector", "SegmentSelectorValue", "SegmentSelectors", "SegmentStatusFilter",
    "StatusSummary", "TimeSpan", "TokenResponse", "Transformation", "TransformationParams", "audiences_of",
    "check_audience_count",
]

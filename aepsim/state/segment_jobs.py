"""One simulated segment job: its timeline and its wire rendering (aep-api.md §3.3, §3.4).

Status is derived from the injected clock on every read: NEW → QUEUED → PROCESSING →
SUCCEEDED | FAILED, or CANCELLING → CANCELLED after a DELETE on a non-terminal job. The outcome
(``fails``) and every instant are fixed at creation, so a read never changes the job.

Rendering follows the documented examples: the create answer (status NEW) has no ``metrics``,
like the tutorial's; from QUEUED on (and once cancelled) ``metrics.totalTime.startTimeInMs`` (the creation instant,
because the documented totalTime spans queueing too) and an empty ``profileSegmentationTime``;
``batchId``/``computeJobId``/``computeGatewayJobId`` from PROCESSING on; end/total times and the
profile counters on SUCCEEDED; ``errors[]`` of ``{code, msg, callStack}`` on FAILED.

``source`` is ``api`` for POSTed jobs (S-SEGJOBS-MD); out-of-band jobs carry ``ui`` (a marketer's
"Evaluate" in the AEP UI: the value is undocumented, our choice) or ``scheduler`` (the nightly batch
evaluation, with ``properties.scheduleId``/``runId`` as in the spec's example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aep_activator.aep.api.models import SEGMENT_JOB_TERMINAL, SegmentJobStatus
from aep_activator.aepsim.state.clock import epoch_ms
from aep_activator.aepsim.state.fixture import SandboxInfo, SegmentInfo

_S = SegmentJobStatus


@dataclass
class SegmentJobRecord:
    id: str
    seq: int
    org_id: str
    sandbox: SandboxInfo
    segments: list[SegmentInfo]
    created: float
    queued_at: float
    processing_at: float
    ends_at: float
    fails: bool
    request_id: str
    batch_id: str
    compute_job_id: int
    compute_gateway_job_id: str
    source: str = "api"
    properties: dict[str, str] | None = None
    cancel_requested: float | None = None
    cancelled_at: float | None = None

    def status(self, now: float) -> SegmentJobStatus:
        if self.cancel_requested is not None and self.cancelled_at is not None:
            return _S.CANCELLED if now >= self.cancelled_at else _S.CANCELLING
        if now < self.queued_at:
            return _S.NEW
        if now < self.processing_at:
            return _S.QUEUED
        if now < self.ends_at:
            return _S.PROCESSING
        return _S.FAILED if self.fails else _S.SUCCEEDED

    def cancel(self, now: float, cancel_s: float) -> bool:
        """Mark for cancelling; False (no change) when already terminal or cancelling."""
        if self.cancel_requested is not None or self.status(now) in SEGMENT_JOB_TERMINAL:
            return False
        self.cancel_requested = now
        self.cancelled_at = now + cancel_s
        return True

    def updated(self, now: float) -> float:
        """The instant of the last transition at or before ``now``."""
        instants = [self.created, self.queued_at, self.processing_at, self.ends_at]
        if self.cancel_requested is not None and self.cancelled_at is not None:
            instants = [t for t in instants if t <= self.cancel_requested]
            instants += [self.cancel_requested, self.cancelled_at]
        return max(t for t in instants if t <= now)

    def render(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        updated = self.updated(now)
        reached = self.cancel_requested if self.cancel_requested is not None else now
        href = f"/segment/jobs/{self.id}"
        body: dict[str, Any] = {
            "id": self.id,
            "imsOrgId": self.org_id,
            "sandbox": self.sandbox.model_dump(),
            "profileInstanceId": "ups",
            "source": self.source,
            "status": status.value,
            "segments": [_segment_entry(s) for s in self.segments],
            "requestId": self.request_id,
            "schema": {"name": "_xdm.context.profile"},
            **({"properties": dict(self.properties)} if self.properties else {}),
            "_links": {"cancel": {"href": href, "method": "DELETE"}, "checkStatus": {"href": href, "method": "GET"}},
            "updateTime": epoch_ms(updated),
            "creationTime": epoch_ms(self.created),
            "updateEpoch": int(updated),
        }
        if reached >= self.processing_at:
            body["batchId"] = self.batch_id
            body["computeJobId"] = self.compute_job_id
            body["computeGatewayJobId"] = self.compute_gateway_job_id
        if status is not _S.NEW:
            # Only the create answer's NEW has no metrics (the tutorial's example); the spec requires them
            # otherwise, so a job cancelled while NEW still gets the start time.
            body["metrics"] = self._metrics(status)
        if status is _S.FAILED:
            body["errors"] = [
                {
                    "code": "80000018",
                    "msg": "com.microsoft.azure.documentdb.DocumentClientException: Message: "
                    '{"Errors":["Request rate is large"]}',
                    "callStack": "com.adobe.platform.segmentation.job.SegmentJobRunner.run",
                }
            ]
        return body

    def _metrics(self, status: SegmentJobStatus) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "totalTime": {"startTimeInMs": epoch_ms(self.created)},
            "profileSegmentationTime": {},
        }
        if status in (_S.SUCCEEDED, _S.FAILED):
            metrics["totalTime"] = _span(self.created, self.ends_at)
            metrics["profileSegmentationTime"] = _span(self.processing_at, self.ends_at)
        if status is _S.SUCCEEDED:
            total = sum(s.profiles for s in self.segments)
            metrics["totalProfiles"] = total
            metrics["segmentedProfileCounter"] = {s.id: s.profiles for s in self.segments}
            metrics["segmentedProfileByNamespaceCounter"] = {
                s.id: {"ECID": s.profiles, "email": s.profiles // 2} for s in self.segments
            }
            metrics["segmentedProfileByStatusCounter"] = {
                s.id: {
                    "exited": s.profiles // 10,
                    "existing": s.profiles - s.profiles // 4,
                    "realized": s.profiles // 4,
                }
                for s in self.segments
            }
            by_policy: dict[str, int] = {}
            for s in self.segments:
                by_policy[s.mergePolicy.id] = by_policy.get(s.mergePolicy.id, 0) + s.profiles
            metrics["totalProfilesByMergePolicy"] = by_policy
        return metrics


def _segment_entry(segment: SegmentInfo) -> dict[str, Any]:
    return {
        "segmentId": segment.id,
        "segment": {
            "id": segment.id,
            "expression": {"type": "PQL", "format": "pql/text", "value": segment.expression},
            "mergePolicyId": segment.mergePolicy.id,
            "mergePolicy": {"id": segment.mergePolicy.id, "version": segment.mergePolicy.version},
        },
    }


def _span(start: float, end: float) -> dict[str, int]:
    return {
        "startTimeInMs": epoch_ms(start),
        "endTimeInMs": epoch_ms(end),
        "totalTimeInMs": epoch_ms(end) - epoch_ms(start),
    }

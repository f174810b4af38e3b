"""One simulated export job: its timeline and its wire rendering (aep-api.md §4.3).

NEW → PROCESSING → SUCCEEDED | FAILED, derived from the clock on each read. A DELETE on a
non-terminal job gives CANCELLING → CANCELLED: undocumented upstream (§12.5, the documented enum
has no cancel states), chosen so a client sees the DELETE take effect. The job echoes the request
(``fields``, ``filter``, ``additionalFields``, ``mergePolicy`` only when sent, as in the examples);
``mergePolicy`` defaults to the first filtered segment's policy, as the docs describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aep_activator.aep.api.models import EXPORT_JOB_TERMINAL, ExportJobStatus
from aep_activator.aepsim.state.clock import epoch_ms
from aep_activator.aepsim.state.fixture import SandboxInfo

_S = ExportJobStatus


@dataclass
class ExportJobRecord:
    id: int
    org_id: str
    sandbox: SandboxInfo
    request: dict[str, Any]
    """The validated request, as ``ExportJobCreate.wire()``."""
    merge_policy: dict[str, Any]
    profiles: int
    created: float
    processing_at: float
    ends_at: float
    fails: bool
    request_id: str
    batch_id: str
    compute_gateway_job_id: str
    cancel_requested: float | None = None
    cancelled_at: float | None = None

    @property
    def offset(self) -> str:
        """The opaque list offset ``"<creationTimeMs>_<id>"`` (aep-api.md §4.4)."""
        return f"{epoch_ms(self.created)}_{self.id}"

    @property
    def sort_key(self) -> tuple[int, int]:
        return (epoch_ms(self.created), self.id)

    def status(self, now: float) -> ExportJobStatus:
        if self.cancel_requested is not None and self.cancelled_at is not None:
            return _S.CANCELLED if now >= self.cancelled_at else _S.CANCELLING
        if now < self.processing_at:
            return _S.NEW
        if now < self.ends_at:
            return _S.PROCESSING
        return _S.FAILED if self.fails else _S.SUCCEEDED

    def cancel(self, now: float, cancel_s: float) -> bool:
        """Mark for cancelling; False (no change) when already terminal or cancelling."""
        if self.cancel_requested is not None or self.status(now) in EXPORT_JOB_TERMINAL:
            return False
        self.cancel_requested = now
        self.cancelled_at = now + cancel_s
        return True

    def updated(self, now: float) -> float:
        instants = [self.created, self.processing_at, self.ends_at]
        if self.cancel_requested is not None and self.cancelled_at is not None:
            instants = [t for t in instants if t <= self.cancel_requested]
            instants += [self.cancel_requested, self.cancelled_at]
        return max(t for t in instants if t <= now)

    def render(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        reached = self.cancel_requested if self.cancel_requested is not None else now
        req = self.request
        body: dict[str, Any] = {"id": self.id, "jobType": "BATCH", "destination": self._destination()}
        for key in ("fields", "schema"):
            if key in req:
                body[key] = req[key]
        body["imsOrgId"] = self.org_id
        body["status"] = status.value
        for key in ("filter", "additionalFields"):
            if key in req:
                body[key] = req[key]
        body["mergePolicy"] = self.merge_policy
        body["profileInstanceId"] = "ups"
        body["metrics"] = self._metrics(status, reached)
        body["computeGatewayJobId"] = {
            "exportJob": self.compute_gateway_job_id if reached >= self.processing_at else ""
        }
        body["creationTime"] = epoch_ms(self.created)
        body["updateTime"] = epoch_ms(self.updated(now))
        body["requestId"] = self.request_id
        if status is _S.FAILED:
            body["errors"] = [
                {
                    "code": "0090000009",
                    "msg": f"Error writing profiles to output path 'adl://simulator/snapshot/{self.id}'",
                    "callStack": "com.adobe.aep.unifiedprofile.common.logging.Logger",
                },
                {
                    "code": "unknown",
                    "msg": "Job aborted.",
                    "callStack": "org.apache.spark.SparkException: Job aborted.",
                },
            ]
        return body

    def _destination(self) -> dict[str, Any]:
        dest = dict(self.request["destination"])
        if not dest.get("segmentPerBatch"):
            dest["batchId"] = self.batch_id
            return dest
        segments = (self.request.get("filter") or {}).get("segments") or []
        dest["batches"] = [{**s, "batchId": f"{self.batch_id[:24]}{i:08x}"} for i, s in enumerate(segments)]
        return dest

    def _metrics(self, status: ExportJobStatus, reached: float) -> dict[str, Any]:
        if status not in (_S.SUCCEEDED, _S.FAILED):
            metrics: dict[str, Any] = {"totalTime": {"startTimeInMs": epoch_ms(self.created)}}
            if reached >= self.processing_at:
                metrics["profileExportTime"] = {"startTimeInMs": epoch_ms(self.processing_at)}
            return metrics
        metrics = {
            "totalTime": _span(self.created, self.ends_at),
            "profileExportTime": _span(self.processing_at, self.ends_at),
        }
        if status is _S.SUCCEEDED:
            metrics["totalExportedProfileCounter"] = self.profiles
            metrics["exportedProfileByNamespaceCounter"] = {"ECID": self.profiles, "email": self.profiles // 2}
        return metrics


def _span(start: float, end: float) -> dict[str, int]:
    return {
        "startTimeInMs": epoch_ms(start),
        "endTimeInMs": epoch_ms(end),
        "totalTimeInMs": epoch_ms(end) - epoch_ms(start),
    }

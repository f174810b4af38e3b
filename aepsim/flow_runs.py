"""One simulated ad-hoc activation flow run, rendered like S-DEST-YAML's batch run (aep-api.md §6).

One run exists per (destination dataflow, audience) pair of an ad-hoc request.
``metrics.statusSummary.status`` goes ``processing`` → ``success`` | ``failed``: lowercase, as in every
documented example (the spec's enum is capitalised; the shared models accept both).
While processing, ``durationSummary`` has only ``startedAtUTC`` and the size/record/file summaries
are empty; on completion they fill in, with ``errors`` and ``recordSummary.failedInfo`` on failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aep_activator.aep.api.models import FlowRunStatus
from aep_activator.aepsim.clock import epoch_ms
from aep_activator.aepsim.fixture import DestinationInfo, SandboxInfo

_FAILED_INFO = {"code": "ACTIVATION_BATCH-0000-FAILED", "message": "Job aborted."}


@dataclass
class FlowRunRecord:
    id: str
    seq: int
    destination: DestinationInfo
    audience: str
    profiles: int
    org_id: str
    sandbox: SandboxInfo
    actor: str
    """The client id that started the run (``createdBy``/``createdClient``)."""
    created: float
    ends_at: float
    fails: bool
    activity_ids: tuple[str, str]
    provider_ref_id: str
    snapshot_batch_id: str

    @property
    def flow_id(self) -> str:
        return self.destination.id

    def status(self, now: float) -> FlowRunStatus:
        if now < self.ends_at:
            return FlowRunStatus.PROCESSING
        return FlowRunStatus.FAILED if self.fails else FlowRunStatus.SUCCESS

    def render(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        done = status is not FlowRunStatus.PROCESSING
        updated = self.ends_at if done else self.created
        summary: dict[str, Any] = {"status": status.value}
        if status is FlowRunStatus.FAILED:
            summary["errors"] = [dict(_FAILED_INFO)]
        summary["activityRefs"] = [self.activity_ids[0]]
        duration = {"startedAtUTC": epoch_ms(self.created)}
        if done:
            duration["completedAtUTC"] = epoch_ms(self.ends_at)
        return {
            "id": self.id,
            "createdAt": epoch_ms(self.created),
            "updatedAt": epoch_ms(updated),
            "createdBy": f"{self.actor}@AdobeID",
            "updatedBy": f"{self.actor}@AdobeID",
            "createdClient": self.actor,
            "updatedClient": self.actor,
            "sandboxId": self.sandbox.sandboxId,
            "sandboxName": self.sandbox.sandboxName,
            "imsOrgId": self.org_id,
            "flowId": self.flow_id,
            "flowSpec": {"id": self.destination.flowSpecId, "version": "1.0"},
            "providerRefId": self.provider_ref_id,
            "etag": f'"{self.id[:8]}-0000-0200-0000-{int(updated):012x}"',
            "metrics": {
                "durationSummary": duration,
                "sizeSummary": self._sizes() if done else {},
                "recordSummary": self._records(status) if done else {},
                "fileSummary": ({"inputFileCount": 1, "outputFileCount": 0 if self.fails else 1} if done else {}),
                "statusSummary": summary,
            },
            "activities": self._activities(status),
        }

    def _sizes(self) -> dict[str, int]:
        size = self.profiles * 110
        return {"inputBytes": size, "outputBytes": 0 if self.fails else size}

    def _records(self, status: FlowRunStatus) -> dict[str, Any]:
        entity = f"segment:{self.audience}"
        n = self.profiles
        skipped = n // 100
        out = 0 if status is FlowRunStatus.FAILED else n - skipped
        records: dict[str, Any] = {
            "inputRecordCount": n,
            "createdRecordCount": out,
            "outputRecordCount": out,
            "skippedRecordCount": skipped,
            "sourceSummaries": [
                {
                    "id": self.destination.sourceConnectionId,
                    "inputRecordCount": n,
                    "skippedRecordCount": skipped,
                    "entitySummaries": [{"id": entity, "inputRecordCount": n, "skippedRecordCount": skipped}],
                }
            ],
            "targetSummaries": [
                {
                    "id": self.destination.targetConnectionId,
                    "createdRecordCount": out,
                    "outputRecordCount": out,
                    "entitySummaries": [{"id": entity, "createdRecordCount": out, "outputRecordCount": out}],
                }
            ],
        }
        if status is FlowRunStatus.FAILED:
            records["failedInfo"] = [dict(_FAILED_INFO)]
        else:
            records["skippedInfo"] = [
                {
                    "code": "ACTIVATION_BATCH-0000-SKIP",
                    "message": "Records didn't match attribute filter.",
                    "count": skipped,
                }
            ]
        return records

    def _activities(self, status: FlowRunStatus) -> list[dict[str, Any]]:
        processor = {"status": status.value, "extensions": {"snapshot.batchId": self.snapshot_batch_id}}
        return [
            {"id": self.activity_ids[0], "name": "Activation Batch XdmProcessor Activity", "statusSummary": processor},
            {
                "id": self.activity_ids[1],
                "name": "Activation Batch Publisher Activity",
                "statusSummary": {"status": status.value, "extensions": {}},
            },
        ]

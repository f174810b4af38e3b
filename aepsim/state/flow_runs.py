"""One simulated destination flow run, rendered like S-DEST-YAML's batch run (aep-api.md §6).

An ad-hoc request starts one run per (destination dataflow, audience) pair. A *scheduled* run (AEP's
own scheduler, created out of band through the admin API) covers every audience it was given on its
dataflow, one ``entitySummaries`` item each.
``metrics.statusSummary.status`` goes ``processing`` → ``success`` | ``failed``: lowercase, as in every
documented example (the spec's enum is capitalised; the shared models accept both).
While processing, ``durationSummary`` has only ``startedAtUTC`` and the size/record/file summaries
are empty; on completion they fill in, with ``errors`` and ``recordSummary.failedInfo`` on failure.
``updatedAt`` is the creation instant while processing and the end instant afterwards, so a run
that ends moves up a list ordered by ``updatedAt``.

Who started it: ``createdClient`` is the caller's client id (the ``x-api-key``) for ad-hoc runs and
``createdBy`` equals it, as S-DEST-YAML says for service tokens ("the value for createdBy is the same
as createdClient"). A scheduled run names a system client, ``SCHEDULER_CLIENT`` (AEP's real value is
undocumented; this one is our choice), never a caller's. ``sourceSummaries[].id`` is the dataflow's
source connection id, as in both of the spec's example runs (two audiences, one source id), and each
audience is an ``entitySummaries`` item ``segment:<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aep_activator.aep.api.models import FlowRunStatus
from aep_activator.aepsim.state.clock import epoch_ms
from aep_activator.aepsim.state.fixture import DestinationInfo, SandboxInfo

SCHEDULER_CLIENT = "acp_destination_scheduler"
"""``createdClient``/``createdBy`` of scheduled runs: a system client of the simulator's choosing."""

_FAILED_INFO = {"code": "ACTIVATION_BATCH-0000-FAILED", "message": "Job aborted."}


@dataclass
class FlowRunRecord:
    id: str
    seq: int
    destination: DestinationInfo
    audiences: tuple[str, ...]
    profiles: dict[str, int]
    """Simulated audience sizes, by audience id."""
    org_id: str
    sandbox: SandboxInfo
    created_client: str
    """The client that started the run: the caller's api key, or ``SCHEDULER_CLIENT``."""
    created: float
    ends_at: float
    fails: bool
    activity_ids: tuple[str, str]
    provider_ref_id: str
    snapshot_batch_id: str
    scheduled: bool = False

    @property
    def flow_id(self) -> str:
        return self.destination.id

    @property
    def audience(self) -> str:
        """The first audience: an ad-hoc run's only one (kept for readers from before scheduled runs)."""
        return self.audiences[0]

    def updated(self, now: float) -> float:
        """``updatedAt`` in epoch seconds: the creation, then the end once the run is over."""
        return self.ends_at if now >= self.ends_at else self.created

    def status(self, now: float) -> FlowRunStatus:
        if now < self.ends_at:
            return FlowRunStatus.PROCESSING
        return FlowRunStatus.FAILED if self.fails else FlowRunStatus.SUCCESS

    def render(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        done = status is not FlowRunStatus.PROCESSING
        updated = self.updated(now)
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
            "createdBy": self.created_client,
            "updatedBy": self.created_client,
            "createdClient": self.created_client,
            "updatedClient": self.created_client,
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
        size = sum(self.profiles.values()) * 110
        return {"inputBytes": size, "outputBytes": 0 if self.fails else size}

    def _records(self, status: FlowRunStatus) -> dict[str, Any]:
        failed = status is FlowRunStatus.FAILED
        counts = {a: (self.profiles.get(a, 0), self.profiles.get(a, 0) // 100) for a in self.audiences}
        n = sum(c for c, _ in counts.values())
        skipped = sum(s for _, s in counts.values())
        out = 0 if failed else n - skipped
        sources = [
            {"id": f"segment:{a}", "inputRecordCount": c, "skippedRecordCount": s} for a, (c, s) in counts.items()
        ]
        written = {a: 0 if failed else c - s for a, (c, s) in counts.items()}
        targets = [{"id": f"segment:{a}", "createdRecordCount": w, "outputRecordCount": w} for a, w in written.items()]
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
                    "entitySummaries": sources,
                }
            ],
            "targetSummaries": [
                {
                    "id": self.destination.targetConnectionId,
                    "createdRecordCount": out,
                    "outputRecordCount": out,
                    "entitySummaries": targets,
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

"""Ad-hoc activation on top of ``StateCore``: guardrails, flow runs, and the flow-run list filter.

See ``state.py`` for the documented choices (verbatim 400 messages, ``order`` = dataflow id, quota 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aep_activator.aep.api.models import FlowRunStatus
from aep_activator.aepsim import quota
from aep_activator.aepsim.core import StateCore
from aep_activator.aepsim.errors import adhoc_error, flow_error
from aep_activator.aepsim.fixture import DestinationInfo
from aep_activator.aepsim.flow_runs import FlowRunRecord


@dataclass(frozen=True)
class StartedRun:
    """One ``order[]`` item of an ad-hoc answer before the server turns ``run_id`` into a statusURL."""

    segment: str
    order: str
    run_id: str


class ActivationState(StateCore):
    """Ad-hoc activation runs."""

    def start_adhoc_run(
        self,
        activation_info: dict[str, list[str]],
        export_ids: list[str] | None = None,
        *,
        org_id: str | None = None,
        sandbox_name: str | None = None,
        actor: str = "sim-client",
    ) -> list[StartedRun]:
        """Start one flow run per (dataflow, audience) pair; ``export_ids`` is None for v2.

        Checks, in order: unknown dataflow → 404; unknown v1 export ids → 400; too many audiences → 400;
        audiences not mapped to their dataflow → 400; a run still processing for a pair → 400;
        daily ad-hoc quota → 429. Only a request that passes all of them counts against the quota.
        """
        with self._lock:
            now = self.clock.now()
            unknown_flows = [f for f in activation_info if self.fixture.destination(f) is None]
            if unknown_flows:
                raise adhoc_error(404, f"Destination instance(s) {', '.join(unknown_flows)} not found")
            if export_ids is not None:
                missing = [e for e in export_ids if not e.isdigit() or int(e) not in self.export_jobs]
                if missing:
                    raise adhoc_error(400, f"Export job id(s) {', '.join(missing)} not found")
            audiences = list(dict.fromkeys(a for auds in activation_info.values() for a in auds))
            limit = self._config.guardrails.max_audiences_per_adhoc_job
            if len(audiences) > limit:
                raise adhoc_error(
                    400, f"Cannot activate {len(audiences)} audiences in one ad-hoc job; the maximum is {limit}"
                )
            unmapped = list(
                dict.fromkeys(
                    a
                    for flow, auds in activation_info.items()
                    for a in auds
                    if a not in (self.fixture.destination(flow) or _NO_DEST).audiences
                )
            )
            if unmapped:
                raise adhoc_error(
                    400, f"Segments {', '.join(unmapped)} are not part of this dataflow or out of schedule range!"
                )
            for flow, auds in activation_info.items():
                for audience in auds:
                    running = self._running_run(flow, audience, now)
                    if running is not None:
                        raise adhoc_error(
                            400,
                            f"Run already going on for audience {audience} for order {flow} with run id {running.id}",
                        )
            org = self._org(org_id)
            self._quota_check(
                quota.ADHOC, org, self._config.guardrails.adhoc_jobs_per_day_per_org, now, "ad-hoc activation jobs"
            )
            sandbox = self.fixture.sandbox(sandbox_name) if sandbox_name else self.fixture.default_sandbox()
            started: list[StartedRun] = []
            for flow, auds in activation_info.items():
                dest = self.fixture.destination(flow)
                assert dest is not None  # checked above
                for audience in auds:
                    segment = self.fixture.segment(audience)
                    self._seq += 1
                    run = FlowRunRecord(
                        id=self._uuid(),
                        seq=self._seq,
                        destination=dest,
                        audience=audience,
                        profiles=segment.profiles if segment else 0,
                        org_id=org,
                        sandbox=sandbox,
                        actor=actor,
                        created=now,
                        ends_at=now + self._scale(self._config.durations.activation_run_s),
                        fails=self._fails(self._config.failure_rates.activation_run),
                        activity_ids=(self._uuid(), self._uuid()),
                        provider_ref_id=self._hex(32),
                        snapshot_batch_id=self._hex(26).upper(),
                    )
                    self.flow_runs[run.id] = run
                    started.append(StartedRun(segment=audience, order=flow, run_id=run.id))
            self.quota.take(quota.ADHOC, org, now)
            return started

    def _running_run(self, flow_id: str, audience: str, now: float) -> FlowRunRecord | None:
        return next(
            (
                r
                for r in self.flow_runs.values()
                if r.flow_id == flow_id and r.audience == audience and r.status(now) is FlowRunStatus.PROCESSING
            ),
            None,
        )

    def get_flow_run(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            run = self.flow_runs.get(run_id)
            if run is None:
                raise flow_error(
                    404,
                    f"The requested runs resource {run_id} is not found. Verify the resource ID before trying again.",
                    run_id,
                )
            return run.render(self.clock.now())

    def list_flow_runs(
        self, *, flow_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Runs newest first, filtered by dataflow id and (case-insensitive) status."""
        with self._lock:
            now = self.clock.now()
            runs = sorted(self.flow_runs.values(), key=lambda r: (r.created, r.seq), reverse=True)
            if flow_id:
                runs = [r for r in runs if r.flow_id == flow_id]
            if status:
                runs = [r for r in runs if r.status(now).value == status.lower()]
            return [r.render(now) for r in runs[:limit]]


_NO_DEST = DestinationInfo(id="", name="", flowSpecId="", sourceConnectionId="", targetConnectionId="", audiences=[])

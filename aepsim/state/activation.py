"""Ad-hoc activation and scheduled runs on top of the segmentation state: guardrails, flow runs, and
the flow-run list (filters, order and paging from ``queries.py``).

See ``machine.py`` for the documented choices (verbatim 400 messages, ``order`` = dataflow id, quota 429).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aep_activator.aep.api.models import FlowRunStatus
from aep_activator.aepsim.state import queries, quota
from aep_activator.aepsim.state.clock import utc_day
from aep_activator.aepsim.state.errors import SimError, adhoc_error, flow_error
from aep_activator.aepsim.state.export_jobs import ExportJobRecord
from aep_activator.aepsim.state.fixture import DestinationInfo, SandboxInfo
from aep_activator.aepsim.state.flow_runs import SCHEDULER_CLIENT, FlowRunRecord
from aep_activator.aepsim.state.segmentation import SegmentationState

_EXPORT_ID = re.compile(r"[0-9]+", re.ASCII)
FIRST_ACTIVATION_WAIT_S = 3600.0
"""The ad-hoc spec: at least one hour must pass after an audience's first scheduled activation. The
error is undocumented (aep-api.md §12.16); the simulator answers the "out of schedule range" 400."""


@dataclass(frozen=True)
class StartedRun:
    """One ``order[]`` item of an ad-hoc answer before the api layer turns ``run_id`` into a statusURL."""

    segment: str
    order: str
    run_id: str


@dataclass(frozen=True)
class RunPage:
    """One page of the flow-run list: rendered runs, the token of the next page (or None), the total."""

    items: list[dict[str, Any]]
    next_token: str | None
    total: int


def _bad_request(message: str) -> SimError:
    return flow_error(400, message, "")


class ActivationState(SegmentationState):
    """Ad-hoc activation runs and scheduled runs."""

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

        Checks, in order: unknown sandbox → 403; unknown dataflow → 404; unknown v1 export ids (of this
        sandbox) → 400; too many audiences → 400; audiences not mapped to their dataflow → 400; a run
        (ad-hoc or scheduled) still processing for a pair in this sandbox → 400; daily ad-hoc quota
        → 429. Only a request that passes all of them counts against the quota.
        """
        with self._lock:
            now = self.clock.now()
            org = self._org(org_id)
            sandbox = self._sandbox(sandbox_name, org)
            unknown_flows = [f for f in activation_info if self.fixture.destination(f) is None]
            if unknown_flows:
                raise adhoc_error(404, f"Destination instance(s) {', '.join(unknown_flows)} not found")
            if export_ids is not None:
                missing = [e for e in export_ids if self._export_in(e, sandbox) is None]
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
                    if a not in self._mapped(flow) or self._first_activated(flow, a) > now - FIRST_ACTIVATION_WAIT_S
                )
            )
            if unmapped:
                raise adhoc_error(
                    400, f"Segments {', '.join(unmapped)} are not part of this dataflow or out of schedule range!"
                )
            for flow, auds in activation_info.items():
                for audience in auds:
                    running = self._running_run(flow, audience, sandbox, now)
                    if running is not None:
                        raise adhoc_error(
                            400,
                            f"Run already going on for audience {audience} for order {flow} with run id {running.id}",
                        )
            self._daily_check(
                quota.ADHOC, org, self._config.guardrails.adhoc_jobs_per_day_per_org, now, "ad-hoc activation jobs"
            )
            started: list[StartedRun] = []
            for flow, auds in activation_info.items():
                dest = self.fixture.destination(flow)
                assert dest is not None  # checked above
                for audience in auds:
                    duration_s = self._config.durations.activation_run_s
                    run = self._new_run(dest, (audience,), org, sandbox, actor, now, duration_s)
                    started.append(StartedRun(segment=audience, order=flow, run_id=run.id))
            self.quota.take(quota.ADHOC, org, utc_day(now))
            return started

    def start_scheduled_run(
        self,
        flow_id: str,
        audiences: list[str] | None = None,
        *,
        sandbox_name: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a *scheduled* export run on ``flow_id``, as AEP's own scheduler would; returns the run.

        It covers ``audiences`` (default: every audience mapped to the dataflow) in one run, is created
        by ``SCHEDULER_CLIENT`` and spends no ad-hoc quota. While it is processing, an ad-hoc request for
        any of its audiences on that dataflow gets "Run already going on…" with this run's id.
        Unknown sandbox → 403; unknown dataflow → 404; audiences not mapped to it → 400.
        """
        with self._lock:
            now = self.clock.now()
            org = self._org(org_id)
            sandbox = self._sandbox(sandbox_name, org)
            dest = self.fixture.destination(flow_id)
            if dest is None:
                raise adhoc_error(404, f"Destination instance(s) {flow_id} not found")
            chosen = list(dict.fromkeys(audiences)) if audiences else list(dest.audiences)
            unmapped = [a for a in chosen if a not in dest.audiences]
            if unmapped:
                raise adhoc_error(
                    400, f"Segments {', '.join(unmapped)} are not part of this dataflow or out of schedule range!"
                )
            run = self._new_run(
                dest, tuple(chosen), org, sandbox, SCHEDULER_CLIENT, now, self._config.durations.scheduled_run_s
            )
            run.scheduled = True
            return run.render(now)

    def _new_run(
        self,
        dest: DestinationInfo,
        audiences: tuple[str, ...],
        org: str,
        sandbox: SandboxInfo,
        client: str,
        now: float,
        duration_s: float,
    ) -> FlowRunRecord:
        profiles = {a: s.profiles for a in audiences if (s := self.fixture.segment(a)) is not None}
        self._seq += 1
        fails = self._fails(self._config.failure_rates.activation_run)
        run = FlowRunRecord(
            id=self._uuid(),
            seq=self._seq,
            destination=dest,
            audiences=audiences,
            profiles=profiles,
            org_id=org,
            sandbox=sandbox,
            created_client=client,
            created=now,
            ends_at=now + self._scale(self._spread(duration_s)),
            fails=fails,
            activity_ids=(self._uuid(), self._uuid()),
            provider_ref_id=self._hex(32),
            snapshot_batch_id=self._hex(26).upper(),
        )
        self.flow_runs[run.id] = run
        return run

    def _mapped(self, flow_id: str) -> list[str]:
        """The audiences mapped to a dataflow (dataflows.py adds those mapped at run time)."""
        return list((self.fixture.destination(flow_id) or _NO_DEST).audiences)

    def _first_activated(self, flow_id: str, audience: str) -> float:
        """When ``audience`` was first activated on ``flow_id`` (fixture mappings: long ago)."""
        return 0.0

    def _running_run(self, flow_id: str, audience: str, sandbox: SandboxInfo, now: float) -> FlowRunRecord | None:
        return next(
            (
                r
                for r in self.flow_runs.values()
                if r.flow_id == flow_id
                and audience in r.audiences
                and r.sandbox.sandboxName == sandbox.sandboxName
                and r.status(now) is FlowRunStatus.PROCESSING
            ),
            None,
        )

    def _export_in(self, export_id: str, sandbox: SandboxInfo) -> ExportJobRecord | None:
        job = self.export_jobs.get(int(export_id)) if _EXPORT_ID.fullmatch(export_id) else None
        return job if job is not None and job.sandbox.sandboxName == sandbox.sandboxName else None

    # ---------------------------------------------------------------------------------- reading

    def get_flow_run(self, run_id: str, *, sandbox_name: str | None = None) -> dict[str, Any]:
        """One run of this sandbox (default: the default sandbox); another sandbox's run is a 404."""
        with self._lock:
            sandbox = self._sandbox(sandbox_name)
            run = self.flow_runs.get(run_id)
            if run is None or run.sandbox.sandboxName != sandbox.sandboxName:
                raise flow_error(
                    404,
                    f"The requested runs resource {run_id} is not found. Verify the resource ID before trying again.",
                    run_id,
                )
            return run.render(self.clock.now())

    def list_flow_runs(
        self, *, flow_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The first page of the default sandbox's runs, in the configured order, by dataflow and status."""
        clauses = []
        if flow_id:
            clauses.append(queries.Clause("flowId", "==", (flow_id,)))
        if status:
            clauses.append(queries.Clause("metrics.statusSummary.status", "==", (status,)))
        return self.flow_run_page(clauses, limit=limit).items

    def flow_run_page(
        self,
        clauses: list[queries.Clause],
        *,
        orderby: str | None = None,
        limit: int = 100,
        token: str | None = None,
        sandbox_name: str | None = None,
    ) -> RunPage:
        """One page of this sandbox's runs matching every clause, in ``orderby`` (default:
        ``lists.flow_runs_orderby``), at most ``min(limit, lists.flow_runs_page_size)`` long, starting
        after ``token``. Raises the Flow Service 400 for a malformed ``orderby`` or token."""
        with self._lock:
            now = self.clock.now()
            sandbox = self._sandbox(sandbox_name)
            order_text = orderby or self._config.lists.flow_runs_orderby
            order = queries.parse_orderby(order_text, _bad_request)
            # Render only the runs that can match: a list by dataflow and status (the preflight's, once a
            # run) would otherwise render every run the dataflow ever had, and slow down as they pile up.
            flows = queries.required_values(clauses, "flowId")
            statuses = queries.required_values(clauses, "metrics.statusSummary.status")
            rendered = [
                (r.seq, r.render(now)) for r in self.flow_runs.values()
                if r.sandbox.sandboxName == sandbox.sandboxName and (flows is None or r.flow_id in flows)
                and (statuses is None or r.status(now).value in statuses)
            ]  # fmt: skip
            matching = [(s, body) for s, body in rendered if all(c.matches(body) for c in clauses)]
            keyed = queries.ordered([(queries.sort_key(body, s, order), body) for s, body in matching], order)
            if token is not None:
                after = queries.decode_token(token, order_text, _bad_request)
                if len(after) != len(order) + 1:
                    raise _bad_request(f"Invalid continuationToken {token[:40]!r}")
                keyed = [kb for kb in keyed if queries.compare_keys(kb[0], after, order) > 0]
            size = min(limit, self._config.lists.flow_runs_page_size)
            page = keyed[:size]
            more = len(keyed) > size
            next_token = queries.encode_token(order_text, page[-1][0]) if more and page else None
            return RunPage([body for _, body in page], next_token, len(matching))


_NO_DEST = DestinationInfo(id="", name="", flowSpecId="", sourceConnectionId="", targetConnectionId="", audiences=[])

"""Reconciliation with AEP's own records: the quota ledger learns what AEP counts that we did not spend.

Our ledger counts the POSTs this system sends. AEP counts more: a marketer's "Evaluate" in the UI is an
on-demand segment job too, and then our next POST would be the one over quota. So, periodically (beat,
``RECONCILE_INTERVAL_S``) and on demand (``aep-activator reconcile``), for every sandbox this deployment
serves, the reconciler lists the segment jobs of the current contract year (``GET /segment/jobs``,
newest first, back to the year's start) and:

- counts those AEP counts against the on-demand quota, as far as the docs tell (aep-api.md §3.8: "Runs
  created through the API or the UI count. The nightly batch job does not."): ``source`` ``api`` or
  ``ui`` count, the scheduler's batch jobs do not, and any other source is reported as *unclassified*;
- records every counted job that no run of ours created or adopted (no ``owner:segment_job`` key) as
  *external* usage, a slot spent by holder ``external:{job id}`` in the daily and yearly windows of its
  creation, so the next run waits for the window instead of hitting AEP's 429.

For ad-hoc activations the docs cannot tell an ad-hoc flow run from a scheduled one, so the flow runs of
today on the dataflows our recent runs used are *reported*, not counted: those of our own client id with
no run of ours owning them (*orphaned*: e.g. after a Redis loss without AOF) and those of other clients
(*unclassified*). The reconciler never POSTs anything. Its last report is kept in
``{prefix}reconcile:last`` for ``aep-activator quota`` and the logs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from aep_activator.aep.api.errors import AEPError
from aep_activator.aep.coordination.quota import QuotaSpec
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.scopes import Quota, specs
from aep_activator.tasks.runtime import Runtime

log = logging.getLogger(__name__)

COUNTED_SOURCES = frozenset({"api", "ui"})
NOT_COUNTED_SOURCES = frozenset({"scheduler", "batch"})
MAX_PAGES = 20


@dataclass
class SandboxReport:
    counted_today: int = 0
    counted_year: int = 0
    ours_today: int = 0
    external_today: int = 0
    external_year: int = 0
    newly_recorded: int = 0
    unclassified: int = 0
    settling: int = 0  # created less than 2 x LOOK_SETTLE_S ago: maybe ours, its answer lost; the next pass decides
    error: str = ""


@dataclass
class Report:
    at: float
    sandboxes: dict[str, SandboxReport] = field(default_factory=dict)
    flow_runs_unclassified: int = 0
    orphaned_flow_runs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def reconcile(rt: Runtime) -> Report:
    s = rt.settings
    now = rt.quotas.server_time()
    report = Report(at=now)
    from aep_activator.tasks.producer import known_sandboxes

    for sandbox in known_sandboxes(rt):
        name = sandbox or "default"
        try:
            report.sandboxes[name] = _segment_jobs(rt, sandbox, now)
        except AEPError as exc:
            report.sandboxes[name] = SandboxReport(error=str(exc))
            log.warning("reconcile: sandbox %s: %s", name, exc)
    try:
        _flow_runs(rt, report, now)
    except AEPError as exc:
        log.warning("reconcile: flow runs: %s", exc)
    rt.redis.set(rt.keys.prefix + "reconcile:last", report.to_json(), ex=int(s.run_record_ttl_s))
    for name, sb in report.sandboxes.items():
        if sb.newly_recorded:
            log.warning("reconcile: sandbox %s: %d segment jobs this system did not send now count in the ledger",
                        name, sb.newly_recorded)  # fmt: skip
    return report


def _segment_jobs(rt: Runtime, sandbox: str | None, now: float) -> SandboxReport:
    daily, yearly = specs(Quota.SEGMENT_JOBS, rt.step_config.quotas, org_id=rt.settings.aep_org_id or "",
                          sandbox=sandbox)  # fmt: skip
    day_start, _ = daily.window.containing(now)
    year_start, _ = yearly.window.containing(now)
    out = SandboxReport()
    client = rt.client_for(sandbox)
    for _, page in client.segment_jobs.iter(max_pages=MAX_PAGES, page_size=100):
        for job in page.children:
            created = (job.creationTime or 0) / 1000
            if created < year_start:
                return out
            source = job.source or "api"
            if source in NOT_COUNTED_SOURCES:
                continue
            if source not in COUNTED_SOURCES:
                out.unclassified += 1
                continue
            if now - created < 2 * rt.settings.look_settle_s:
                out.settling += 1
                continue  # it may be ours, its POST's answer lost and not adopted yet: the next pass decides
            today = created >= day_start
            out.counted_year += 1
            out.counted_today += today
            if rt.ledger.owner("segment_job", job.id) is not None:
                out.ours_today += today
                continue
            out.external_year += 1
            out.external_today += today
            out.newly_recorded += _record_external(rt, [daily, yearly], f"external:{job.id}", created)
        if not page.has_next:
            break
    return out


def _record_external(rt: Runtime, quota_specs: list[QuotaSpec], holder: str, created: float) -> int:
    """Count ``holder`` as spent in the windows of ``created``; 1 if it was not counted yet."""
    added = 0
    for spec in quota_specs:
        start, end = spec.window.containing(created)
        key = rt.keys.quota(spec.name, spec.scope, start)
        added = max(added, int(rt.redis.sadd(key, holder)))
        rt.redis.expireat(key, int(end + (end - start)))
    return added


def _flow_runs(rt: Runtime, report: Report, now: float) -> None:
    day_start, _ = specs(Quota.ADHOC, rt.step_config.quotas, org_id=rt.settings.aep_org_id or "",
                         sandbox=None)[0].window.containing(now)  # fmt: skip
    flows: dict[tuple[str | None, str], None] = {}
    for record in rt.ledger.recent(500):
        try:
            req = ActivationRequest.model_validate(record.request)
        except ValueError:
            continue
        for flow_id in req.activation_info:
            flows[(req.sandbox, flow_id)] = None
    for sandbox, flow_id in flows:
        for page in rt.client_for(sandbox).flow_runs.iter(flow_id=flow_id, max_pages=MAX_PAGES):
            for run in page.items:
                if (run.createdAt or 0) / 1000 < day_start:
                    continue
                if run.createdClient == rt.settings.aep_client_id:
                    if rt.ledger.owner("flow_run", run.id) is None:
                        report.orphaned_flow_runs.append(run.id)
                else:
                    report.flow_runs_unclassified += 1
            if not any((r.createdAt or 0) / 1000 >= day_start for r in page.items):
                break


def last_report(rt: Runtime) -> dict[str, Any] | None:
    raw = rt.redis.get(rt.keys.prefix + "reconcile:last")
    return json.loads(raw) if raw else None

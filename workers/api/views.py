"""What the API and the console show of a run, a list of runs and the quotas: plain dicts of the record.

The same functions feed the JSON answers and the console's templates, so both show the same thing.
"""

from __future__ import annotations

import time
from typing import Any

from aep_activator.aep.coordination.metrics import MetricsStore
from aep_activator.aep.coordination.quota import QuotaUsage
from aep_activator.aep.coordination.runs import TERMINAL, RunRecord, RunStatus
from aep_activator.tasks.runtime import runtime

MAX_LIMIT = 500


def sandbox_of(record: RunRecord) -> str:
    """The sandbox a run works in: its request's (once requests carry one), else the deployment's."""
    return str(record.request.get("sandbox") or runtime().settings.aep_sandbox_name or "default")


def summary(record: RunRecord, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "run_id": record.run_id,
        "status": record.status.value,
        "step": record.step,
        "sandbox": sandbox_of(record),
        "started_by": record.started_by,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "age_s": round(max(0.0, now - record.created_at), 3),
        "terminal": record.status in TERMINAL,
        "waiting_reason": record.waiting_reason,
        "wait_until": record.wait_until,
        "aep_status": record.aep_status,
        "failure_kind": record.failure.kind.value if record.failure else None,
        "error": record.error,
        "recoveries": record.recoveries,
    }


def detail(record: RunRecord) -> dict[str, Any]:
    """The whole record with its step timeline (AEP ids, statuses, waits, recoveries) and a summary."""
    out = record.to_dict()
    out.update(summary(record))
    out["aep_ids"] = {
        "segment_job_id": record.segment_job_id,
        "export_job_id": record.export_job_id,
        "flow_run_ids": [o.get("run_id") for o in record.flow_runs],
    }
    return out


def recent_runs(*, status: RunStatus | None = None, sandbox: str | None = None, limit: int = 50) -> list[RunRecord]:
    """The newest runs, optionally of one status (from the status index) and one sandbox."""
    rt = runtime()
    limit = max(1, min(limit, MAX_LIMIT))
    fetch = limit if sandbox is None else MAX_LIMIT
    if status is None:
        records = rt.ledger.recent(fetch)
    else:
        ids = MetricsStore(rt.redis, rt.keys).ids_by_status(status.value, fetch)
        records = [r for r in (rt.ledger.get(i, timeline=False) for i in ids) if r is not None and r.status is status]
    if sandbox is not None:
        records = [r for r in records if sandbox_of(r) == sandbox]
    return records[:limit]


def quota(usage: QuotaUsage) -> dict[str, Any]:
    return {
        "quota": usage.name,
        "scope": usage.scope,
        "window": "day" if usage.reset_at - usage.window_start <= 86400 else "year",
        "used": usage.used,
        "pending": usage.pending,
        "limit": usage.limit,
        "remaining": usage.remaining,
        "window_start": usage.window_start,
        "reset_at": usage.reset_at,
        "percent": round(100.0 * usage.used / usage.limit, 1) if usage.limit else 100.0,
    }

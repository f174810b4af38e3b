"""Look before you create: find the AEP job of a POST whose answer was lost, or prove there is none.

A create step whose intent is unresolved (the POST was sent, its answer never read) only looks. It
adopts a job that this system could have created for this run; it POSTs again only on **proof of
non-acceptance**. For each of the three POSTs, proof means all of this:

- the listing is *complete*: read page by page, in the order the API documents, back past the
  intent's time (less ``clock_skew_s``) — a listing cut short by the page cap proves nothing;
- it was read at least ``look_settle_s`` after the answer was lost (after the intent, when the
  execution died with the POST in flight: ``polls.still_looking``), so a job that AEP accepted has had
  time to appear (the setting must exceed the connect plus read timeout of the POST, checked at start-up);
- it holds no job that could be ours:
  - **segment job** (``POST /segment/jobs``): ``GET /segment/jobs?property=segments~segmentId==<first
    segment>&sort=creationTime:desc``; ours has exactly our segment ids, ``source`` ``api`` (what an
    API POST records, aep-api.md §3.8), a creation time after the intent, and no other run owns it;
  - **export job** (``POST /export/jobs``): ``GET /export/jobs`` (newest first, ``link.next``); ours has
    our dataset, schema and segment filter, a creation time after the intent, and no other owner;
  - **ad-hoc activation** (``POST /adhocrun``): for every dataflow, ``GET /flowservice/runs?property=
    flowId==<dataflow>&orderby=-createdAt``; ours was created after the intent by our own client
    (``createdClient`` is the OAuth client id: AEP's scheduled runs and other integrations have
    theirs) and no other run owns it. A flow run names its audiences only once it ends, so a run of
    ours still processing is *presumed* ours: the step waits for it, and adopts it once its entities
    confirm it. A multi-dataflow activation is adopted only when every (dataflow, audience) pair is
    accounted for.

What cannot be told apart: another integration using *our* client id, or another system POSTing an
identical segment job in the same seconds; the README says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aep_activator.aep.api.models import ExportJob, FlowRun, SegmentJob
from aep_activator.aep.pipeline.steps.base import StepContext


@dataclass(frozen=True)
class Look:
    """What a look found. ``complete``: the listing reached back past the intent."""

    complete: bool
    found: list[Any] = field(default_factory=list)


def _since_ms(intent_s: float, ctx: StepContext) -> int:
    return int((intent_s - ctx.config.clock_skew_s) * 1000)


def segment_job(ctx: StepContext, segment_ids: list[str], intent_s: float) -> Look:
    """Unowned segment jobs with exactly ``segment_ids`` and ``source`` api created after the intent."""
    since = _since_ms(intent_s, ctx)
    wanted = set(segment_ids)
    found: list[SegmentJob] = []
    pages = ctx.client.segment_jobs.iter(segment_id=segment_ids[0], max_pages=ctx.config.look_max_pages)
    for _, page in pages:
        for job in page.children:
            created = job.creationTime or 0
            if created >= since and set(job.segment_ids) == wanted and job.source in (None, "api"):
                found.append(job)
        oldest = min((j.creationTime or 0 for j in page.children), default=0)
        if not page.has_next or not page.children or oldest < since:
            return Look(True, found)
    return Look(False, found)


def export_job(ctx: StepContext, intent_s: float) -> Look:
    """Unowned export jobs with our dataset, schema and segment filter created after the intent."""
    spec = ctx.request.export_job
    assert spec is not None
    since = _since_ms(intent_s, ctx)
    wanted_segments = set(spec.segment_ids)
    found: list[ExportJob] = []
    offset: str | None = None
    for _ in range(ctx.config.look_max_pages):
        page = ctx.client.export_jobs.list(limit=100, offset=offset)
        for job in page.records:
            same_dataset = job.destination is not None and job.destination.datasetId == spec.destination.datasetId
            same_schema = job.schema_ is not None and job.schema_.name == spec.schema_.name
            if (job.creationTime or 0) >= since and same_dataset and same_schema and set(job.segment_ids) == (
                wanted_segments
            ):
                found.append(job)
        offset = page.next_offset
        oldest = min((j.creationTime or 0 for j in page.records), default=0)
        if not offset or not page.records or oldest < since:
            return Look(True, found)
    return Look(False, found)


def flow_runs(ctx: StepContext, flow_id: str, intent_s: float) -> Look:
    """Flow runs of ``flow_id`` created after the intent by our own client.

    The spec returns "the most recently created or updated" runs first; we ask for ``orderby=-createdAt``
    and stop only past runs both created and updated before the intent, which is right in either order.
    """
    since = _since_ms(intent_s, ctx)
    found: list[FlowRun] = []
    for page in ctx.client.flow_runs.iter(flow_id=flow_id, max_pages=ctx.config.look_max_pages):
        for run in page.items:
            if (run.createdAt or 0) >= since and run.createdClient == ctx.config.client_id:
                found.append(run)
        newest_seen = min((max(r.createdAt or 0, r.updatedAt or 0) for r in page.items), default=0)
        if not page.next_token or not page.items or newest_seen < since:
            return Look(True, found)
    return Look(False, found)


def run_entities(run: FlowRun) -> set[str]:
    """The ``segment:<id>`` entities a finished flow run names (``recordSummary``)."""
    out: set[str] = set()
    for summary in (run.metrics.recordSummary or {}).get("sourceSummaries") or []:
        for entity in (summary or {}).get("entitySummaries") or []:
            if isinstance(entity, dict) and isinstance(entity.get("id"), str):
                out.add(entity["id"])
    return out

"""The simulator's pure state machine: segment jobs, export jobs, ad-hoc runs, guardrails, quotas.

No HTTP here. Time comes from an injected ``Clock``; randomness from ``random.Random(seed)``
(one generator for outcomes, one for ids), so a ``ManualClock`` and a fixed seed make every answer
reproducible. One re-entrant lock guards all state, so each check-then-act (guardrail, quota,
create) is atomic even when the HTTP server and a test call in concurrently. Methods return wire
dicts that parse with the response models of ``aep.models``, and raise ``SimError`` for answers
other than success.

Where the documentation disagrees or is silent (aep-api.md §12), the simulator chooses:

- **Segment job create status**: ``NEW`` (the tutorial's table and example); the reference doc's
  examples showing ``PROCESSING`` are followed by the lazy NEW → QUEUED → PROCESSING timeline.
- **Segment job list ``start``**: a zero-based *page index* (aepp increments it by 1 per page);
  ``_links.next.href`` is ``""`` on the last page.
- **Timestamps**: ``creationTime``/``updateTime`` in epoch milliseconds for both job kinds (every
  example is ms, though the export schema says seconds); ``updateEpoch`` in seconds.
- **Export job cancel**: CANCELLING → CANCELLED, undocumented upstream (§12.5). A DELETE on a
  terminal job of either kind changes nothing and still succeeds.
- **``order``** in the ad-hoc answer is the dataflow (destination) id the audience ran on (§12.3);
  one order item per (dataflow, audience) pair.
- **Guardrail errors**: "Run already going on…" and "Segments … are not part of this dataflow or
  out of schedule range!" are verbatim 400s; unmapped ids are joined with ``", "``. More audiences
  than allowed → 400 (§12.2 leaves sync vs async open). Unknown dataflow → 404 ``{"message"}``.
- **Daily quotas** (20 ad-hoc jobs per org per UTC day from the tutorial's note; 2 on-demand segment
  jobs per sandbox per UTC day from the FAE guide): **[inference]** answered 429 with
  ``{"error_code": "429001", "message"}`` and ``Retry-After`` = seconds to 00:00 UTC. A rejected
  request (any 4xx) consumes no quota.
- **Unknown segment ids** (segment or export job) → 400 in the segmentation error shape (errors.py).
- **Segment job body**: the JSON array form; the object form ``{"segments": [...]}`` is accepted,
  and ``"*"`` there means every segment of the fixture.
"""

from __future__ import annotations

from typing import Any

from aep_activator.aep.api.models import ExportJobCreate
from aep_activator.aepsim import quota
from aep_activator.aepsim.activation import ActivationState, StartedRun
from aep_activator.aepsim.errors import ups_error
from aep_activator.aepsim.export_jobs import ExportJobRecord
from aep_activator.aepsim.segment_jobs import SegmentJobRecord

__all__ = ["SimulatorState", "StartedRun"]


class SimulatorState(ActivationState):
    """All simulated AEP state. Every public method is atomic under one lock."""

    # ---------------------------------------------------------------------------------- segment jobs

    def create_segment_job(
        self, segment_ids: list[str], *, org_id: str | None = None, sandbox_name: str | None = None
    ) -> dict[str, Any]:
        """Create an on-demand segment job (status NEW) or raise 400 (limits, unknown ids) / 429 (quota)."""
        with self._lock:
            now = self.clock.now()
            limit = self._config.guardrails.max_segments_per_segment_job
            if len(segment_ids) > limit:
                raise ups_error(
                    400,
                    f"A segment job accepts at most {limit} segment definition ids per call; got {len(segment_ids)}",
                    code=1020,
                )
            segments = self._known_segments(segment_ids)
            sandbox = self.fixture.sandbox(sandbox_name) if sandbox_name else self.fixture.default_sandbox()
            org = self._org(org_id)
            scope = f"{org}/{sandbox.sandboxName}"
            self._quota_check(
                quota.SEGMENT,
                scope,
                self._config.guardrails.segment_jobs_per_day_per_sandbox,
                now,
                "on-demand segment jobs",
            )
            d = self._config.durations
            queued_at = now + self._scale(d.segment_job_new_s)
            processing_at = queued_at + self._scale(d.segment_job_queued_s)
            ends_at = max(processing_at, now + self._scale(d.segment_job_total_s))
            self._seq += 1
            job = SegmentJobRecord(
                id=self._uuid(),
                seq=self._seq,
                org_id=org,
                sandbox=sandbox,
                segments=segments,
                created=now,
                queued_at=queued_at,
                processing_at=processing_at,
                ends_at=ends_at,
                fails=self._fails(self._config.failure_rates.segment_job),
                request_id=self._hex(32),
                batch_id=self._uuid(),
                compute_job_id=30000 + self._seq,
                compute_gateway_job_id=self._uuid(),
            )
            self.segment_jobs[job.id] = job
            self.quota.take(quota.SEGMENT, scope, now)
            return job.render(now)

    def get_segment_job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._segment_job(job_id).render(self.clock.now())

    def cancel_segment_job(self, job_id: str) -> dict[str, Any]:
        """Mark a non-terminal job for cancelling (no-op if terminal); returns the job as it is now."""
        with self._lock:
            now = self.clock.now()
            job = self._segment_job(job_id)
            job.cancel(now, self._scale(self._config.durations.cancel_s))
            return job.render(now)

    def list_segment_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        start: int = 0,
        descending: bool = True,
        segment_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """One page (``start`` = page index) as ``(jobs, total matching, more pages follow)``."""
        with self._lock:
            now = self.clock.now()
            jobs = sorted(self.segment_jobs.values(), key=lambda j: (j.created, j.seq), reverse=descending)
            if status:
                jobs = [j for j in jobs if j.status(now).value == status]
            if segment_id:
                jobs = [j for j in jobs if any(s.id == segment_id for s in j.segments)]
            page = jobs[start * limit : (start + 1) * limit]
            return [j.render(now) for j in page], len(jobs), (start + 1) * limit < len(jobs)

    def _segment_job(self, job_id: str) -> SegmentJobRecord:
        job = self.segment_jobs.get(job_id)
        if job is None:
            raise ups_error(404, f"Segment job with id '{job_id}' not found", code=1404)
        return job

    # ---------------------------------------------------------------------------------- export jobs

    def create_export_job(self, request: ExportJobCreate, *, org_id: str | None = None) -> dict[str, Any]:
        """Create an export job (status NEW) echoing ``request``; 400 for unknown segment ids."""
        with self._lock:
            now = self.clock.now()
            segments = self._known_segments(request.segment_ids) if request.segment_ids else []
            if request.mergePolicy is not None:
                merge_policy = request.mergePolicy.model_dump(exclude_none=True)
            else:
                policy = segments[0].mergePolicy if segments else self.fixture.defaultMergePolicy
                merge_policy = policy.model_dump()
            profiles = sum(s.profiles for s in (segments or self.fixture.segments))
            d = self._config.durations
            job = ExportJobRecord(
                id=self._next_export_id,
                org_id=self._org(org_id),
                request=request.wire(),
                merge_policy=merge_policy,
                profiles=profiles,
                created=now,
                processing_at=now + self._scale(d.export_job_new_s),
                ends_at=max(now + self._scale(d.export_job_new_s), now + self._scale(d.export_job_total_s)),
                fails=self._fails(self._config.failure_rates.export_job),
                request_id=self._uuid(),
                batch_id=self._hex(32),
                compute_gateway_job_id=self._uuid(),
            )
            self._next_export_id += 1
            self.export_jobs[job.id] = job
            return job.render(now)

    def get_export_job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._export_job(job_id).render(self.clock.now())

    def cancel_export_job(self, job_id: str) -> dict[str, Any]:
        """Mark for cancelling (no-op if terminal); returns the documented cancel body."""
        with self._lock:
            self._export_job(job_id).cancel(self.clock.now(), self._scale(self._config.durations.cancel_s))
            return {"status": True, "message": "Export job has been marked for cancelling"}

    def list_export_jobs(
        self,
        *,
        limit: int = 100,
        offset: str | None = None,
        status: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, after the opaque ``offset``; returns ``(records, next offset or None)``."""
        with self._lock:
            now = self.clock.now()
            jobs = sorted(self.export_jobs.values(), key=lambda j: j.sort_key, reverse=True)
            if status:
                jobs = [j for j in jobs if j.status(now).value == status]
            if offset:
                after = _parse_offset(offset)
                jobs = [j for j in jobs if j.sort_key < after]
            page = jobs[:limit]
            more = len(jobs) > limit
            return [j.render(now) for j in page], (page[-1].offset if more and page else None)

    def _export_job(self, job_id: str) -> ExportJobRecord:
        job = self.export_jobs.get(int(job_id)) if job_id.isdigit() else None
        if job is None:
            raise ups_error(404, f"Export job with id '{job_id}' not found", code=1404)
        return job

    # ---------------------------------------------------------------------------------- accounting

    def job_counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {status: count}}`` as of now."""
        with self._lock:
            now = self.clock.now()
            out: dict[str, dict[str, int]] = {"segment_jobs": {}, "export_jobs": {}, "flow_runs": {}}
            kinds: list[tuple[str, list[Any]]] = [
                ("segment_jobs", list(self.segment_jobs.values())),
                ("export_jobs", list(self.export_jobs.values())),
                ("flow_runs", list(self.flow_runs.values())),
            ]
            for kind, records in kinds:
                for record in records:
                    key = record.status(now).value
                    out[kind][key] = out[kind].get(key, 0) + 1
            return out


def _parse_offset(offset: str) -> tuple[int, int]:
    ms, _, job_id = offset.partition("_")
    if not (ms.isdigit() and job_id.isdigit()):
        raise ups_error(400, f"Invalid offset {offset!r}: expected <creationTimeMs>_<id>", code=1021)
    return (int(ms), int(job_id))

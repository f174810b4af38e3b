"""Segment jobs and export jobs (the Segmentation Service) on top of ``StateCore``, per sandbox.

A job belongs to the sandbox it was created in: a GET, DELETE or list in another sandbox does not
see it (404 / absent), as AEP isolates every resource to its sandbox. See ``machine.py`` for the
documented choices.
"""

from __future__ import annotations

import re
from typing import Any

from aep_activator.aep.api.models import ExportJobCreate
from aep_activator.aepsim.state.core import StateCore
from aep_activator.aepsim.state.errors import ups_error
from aep_activator.aepsim.state.export_jobs import ExportJobRecord
from aep_activator.aepsim.state.segment_jobs import SegmentJobRecord

SOURCES = ("api", "ui", "scheduler")
"""Segment job ``source`` values. ``api`` and ``ui`` count against the FAE quotas; the nightly
``scheduler`` evaluation does not (S-FAE-MD: "Runs created through the API or the UI count. The
nightly batch job does not.")."""

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class SegmentationState(StateCore):
    """Segment jobs and export jobs."""

    # ---------------------------------------------------------------------------------- segment jobs

    def create_segment_job(
        self,
        segment_ids: list[str],
        *,
        org_id: str | None = None,
        sandbox_name: str | None = None,
        source: str = "api",
    ) -> dict[str, Any]:
        """Create a segment job (status NEW) or raise 403 (sandbox), 400 (limits, unknown ids) / 429 (quota).

        ``source`` is ``api`` for a POST; ``ui`` and ``scheduler`` are out-of-band jobs (a marketer in
        the AEP UI, the nightly evaluation). A ``scheduler`` job is exempt from the on-demand limits.
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        with self._lock:
            now = self.clock.now()
            on_demand = source != "scheduler"
            limit = self._config.guardrails.max_segments_per_segment_job
            if on_demand and len(segment_ids) > limit:
                raise ups_error(
                    400,
                    f"A segment job accepts at most {limit} segment definition ids per call; got {len(segment_ids)}",
                    code=1020,
                )
            org = self._org(org_id)
            sandbox = self._sandbox(sandbox_name, org)
            segments = self._known_segments(segment_ids)
            scope = f"{org}/{sandbox.sandboxName}"
            if on_demand:
                self._fae_check(scope, sandbox, now)
            d = self._config.durations
            queued_at = now + self._scale(d.segment_job_new_s)
            processing_at = queued_at + self._scale(d.segment_job_queued_s)
            ends_at = max(processing_at, now + self._scale(self._spread(d.segment_job_total_s)))
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
                source=source,
            )
            if source == "scheduler":
                job.properties = {"scheduleId": self._uuid(), "runId": self._uuid()}
            self.segment_jobs[job.id] = job
            if on_demand:
                self._fae_take(scope, now)
            return job.render(now)

    def get_segment_job(self, job_id: str, *, sandbox_name: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self._segment_job(job_id, sandbox_name).render(self.clock.now())

    def cancel_segment_job(self, job_id: str, *, sandbox_name: str | None = None) -> dict[str, Any]:
        """Mark a non-terminal job for cancelling (no-op if terminal); returns the job as it is now."""
        with self._lock:
            now = self.clock.now()
            job = self._segment_job(job_id, sandbox_name)
            job.cancel(now, self._scale(self._config.durations.cancel_s))
            return job.render(now)

    def list_segment_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        start: int = 0,
        descending: bool | None = None,
        segment_id: str | None = None,
        sandbox_name: str | None = None,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """One page (``start`` = page index) as ``(jobs, total matching, more pages follow)``.

        ``descending`` None takes ``lists.segment_jobs_sort``; pages hold at most
        ``min(limit, lists.segment_jobs_page_size)`` jobs.
        """
        with self._lock:
            now = self.clock.now()
            sandbox = self._sandbox(sandbox_name)
            if descending is None:
                descending = self._config.lists.segment_jobs_sort.endswith("desc")
            size = min(limit, self._config.lists.segment_jobs_page_size)
            jobs = [j for j in self.segment_jobs.values() if j.sandbox.sandboxName == sandbox.sandboxName]
            jobs.sort(key=lambda j: (j.created, j.seq), reverse=descending)
            if status:
                jobs = [j for j in jobs if j.status(now).value == status]
            if segment_id:
                jobs = [j for j in jobs if any(s.id == segment_id for s in j.segments)]
            page = jobs[start * size : (start + 1) * size]
            return [j.render(now) for j in page], len(jobs), (start + 1) * size < len(jobs)

    def _segment_job(self, job_id: str, sandbox_name: str | None) -> SegmentJobRecord:
        sandbox = self._sandbox(sandbox_name)
        job = self.segment_jobs.get(job_id)
        if job is None or job.sandbox.sandboxName != sandbox.sandboxName:
            raise ups_error(404, f"Segment job with id '{job_id}' not found", code=1404)
        return job

    # ---------------------------------------------------------------------------------- export jobs

    def create_export_job(
        self, request: ExportJobCreate, *, org_id: str | None = None, sandbox_name: str | None = None
    ) -> dict[str, Any]:
        """Create an export job (status NEW) echoing ``request``; 400 for unknown segment ids."""
        with self._lock:
            now = self.clock.now()
            org = self._org(org_id)
            sandbox = self._sandbox(sandbox_name, org)
            segments = self._known_segments(request.segment_ids) if request.segment_ids else []
            if request.mergePolicy is not None:
                merge_policy = request.mergePolicy.model_dump(exclude_none=True)
            else:
                policy = segments[0].mergePolicy if segments else self.fixture.defaultMergePolicy
                merge_policy = policy.model_dump()
            profiles = sum(s.profiles for s in (segments or self.fixture.segments))
            d = self._config.durations
            processing_at = now + self._scale(d.export_job_new_s)
            job = ExportJobRecord(
                id=self._next_export_id,
                org_id=org,
                sandbox=sandbox,
                request=request.wire(),
                merge_policy=merge_policy,
                profiles=profiles,
                created=now,
                processing_at=processing_at,
                ends_at=max(processing_at, now + self._scale(self._spread(d.export_job_total_s))),
                fails=self._fails(self._config.failure_rates.export_job),
                request_id=self._uuid(),
                batch_id=self._hex(32),
                compute_gateway_job_id=self._uuid(),
            )
            self._next_export_id += 1
            self.export_jobs[job.id] = job
            return job.render(now)

    def get_export_job(self, job_id: str, *, sandbox_name: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self._export_job(job_id, sandbox_name).render(self.clock.now())

    def cancel_export_job(self, job_id: str, *, sandbox_name: str | None = None) -> dict[str, Any]:
        """Mark for cancelling (no-op if terminal); returns the documented cancel body."""
        with self._lock:
            job = self._export_job(job_id, sandbox_name)
            job.cancel(self.clock.now(), self._scale(self._config.durations.cancel_s))
            return {"status": True, "message": "Export job has been marked for cancelling"}

    def list_export_jobs(
        self,
        *,
        limit: int = 100,
        offset: str | None = None,
        status: str | None = None,
        sandbox_name: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, after the opaque ``offset``; returns ``(records, next offset or None)``.

        Pages hold at most ``min(limit, lists.export_jobs_page_size)`` records.
        """
        with self._lock:
            now = self.clock.now()
            sandbox = self._sandbox(sandbox_name)
            size = min(limit, self._config.lists.export_jobs_page_size)
            jobs = [j for j in self.export_jobs.values() if j.sandbox.sandboxName == sandbox.sandboxName]
            jobs.sort(key=lambda j: j.sort_key, reverse=True)
            if status:
                jobs = [j for j in jobs if j.status(now).value == status]
            if offset:
                after = _parse_offset(offset)
                jobs = [j for j in jobs if j.sort_key < after]
            page = jobs[:size]
            more = len(jobs) > size
            return [j.render(now) for j in page], (page[-1].offset if more and page else None)

    def _export_job(self, job_id: str, sandbox_name: str | None) -> ExportJobRecord:
        sandbox = self._sandbox(sandbox_name)
        # ASCII digits only: str.isdigit() admits "²", which int() then refuses (a 500 before).
        job = self.export_jobs.get(int(job_id)) if _DIGITS.fullmatch(job_id) else None
        if job is None or job.sandbox.sandboxName != sandbox.sandboxName:
            raise ups_error(404, f"Export job with id '{job_id}' not found", code=1404)
        return job


def _parse_offset(offset: str) -> tuple[int, int]:
    ms, _, job_id = offset.partition("_")
    if not (_DIGITS.fullmatch(ms) and _DIGITS.fullmatch(job_id)):
        raise ups_error(400, f"Invalid offset {offset!r}: expected <creationTimeMs>_<id>", code=1021)
    return (int(ms), int(job_id))

"""The simulator's pure state machine: segment jobs, export jobs, ad-hoc and scheduled runs,
guardrails, quotas, per sandbox.

No HTTP here. Time comes from an injected ``Clock``; randomness from seeded ``random.Random``
generators (outcomes, ids, durations; see ``core.py``), so a ``ManualClock`` and a fixed seed make
every answer reproducible. One re-entrant lock guards all state, so each check-then-act (guardrail,
quota, create) is atomic even when an HTTP server and a test call in concurrently. Methods return wire
dicts that parse with the response models of ``aep.api.models``, and raise ``SimError`` (a status and
the service's error body) for answers other than success. Bad input changes nothing.

Where the documentation disagrees or is silent (aep-api.md §12), the simulator chooses:

- **Segment job create status**: ``NEW`` (the tutorial's table and example); the reference doc's
  examples showing ``PROCESSING`` are followed by the lazy NEW → QUEUED → PROCESSING timeline.
- **Segment job list ``start``**: a zero-based *page index* (aepp increments it by 1 per page);
  ``_links.next.href`` is ``""`` on the last page. Order: ``sort=creationTime:desc|asc``, default
  ``lists.segment_jobs_sort`` (desc).
- **Export job list**: newest first (the documented ``page.sort: desc``; no other order is
  documented for it), ``limit``/``offset``/``status``.
- **Flow-run list**: the Flow Service query language (``queries.py``): generic ``property`` filters,
  ``orderby``, ``continuationToken``; default order ``lists.flow_runs_orderby`` = ``-updatedAt``
  ("The most recently created or updated entities are returned first", S-DEST-YAML), at most
  ``lists.flow_runs_page_size`` (100) per page.
- **Timestamps**: ``creationTime``/``updateTime`` in epoch milliseconds for both job kinds (every
  example is ms, though the export schema says seconds); ``updateEpoch`` in seconds.
- **Export job cancel**: CANCELLING → CANCELLED, undocumented upstream (§12.5). A DELETE on a
  terminal job of either kind changes nothing and still succeeds.
- **``order``** in the ad-hoc answer is the dataflow (destination) id the audience ran on (§12.3);
  one order item per (dataflow, audience) pair.
- **Guardrail errors**: "Run already going on…" and "Segments … are not part of this dataflow or
  out of schedule range!" are verbatim 400s; unmapped ids are joined with ``", "``. More audiences
  than allowed → 400 (§12.2 leaves sync vs async open). Unknown dataflow → 404 ``{"message"}``.
  A *scheduled* run processing on a dataflow blocks ad-hoc runs for its audiences with the same
  "Run already going on…" 400 naming it ("Ad hoc activation jobs cannot run in parallel with
  scheduled audience export jobs"; which error is undocumented, §12.16). The scheduler itself does
  not wait for ad-hoc runs (undocumented).
- **Quotas** ([inference]: the answer is undocumented, §12.11): 429 ``{"error_code": "429001",
  "message"}`` with ``Retry-After`` = seconds to the window's reset. On-demand segment jobs: 2 per
  sandbox per UTC day, and 50 (production) / 100 (development) per sandbox per year, the year
  opening on ``guardrails.quota_year_start`` at 00:00 UTC; the yearly limit is checked first (its
  wait is the longer). Jobs with ``source`` ``api`` or ``ui`` count; ``scheduler`` ones do not
  (S-FAE-MD). Ad-hoc jobs: 20 per org per UTC day (kept from the tutorial's note; aep-api.md §5.5
  finds no such quota documented). A rejected request (any 4xx) consumes no quota.
- **Sandboxes**: every job, run, quota and guardrail is per sandbox; reading another sandbox's job
  is a 404 and lists leave it out. No sandbox name → the fixture's default sandbox (S-SANDBOX-MD:
  "the system will use a default sandbox"); an unknown name → 403 (``unknown_sandbox_error``;
  undocumented, see errors.py). Segment definitions and dataflows are shared by all sandboxes.
- **Unknown segment ids** (segment or export job) → 400 in the segmentation error shape (errors.py).
- **Segment job body**: the JSON array form; the object form ``{"segments": [...]}`` is accepted,
  and ``"*"`` there means every segment of the fixture.
- **Ids**: export job ids and list offsets are ASCII digits (``[0-9]+``); anything else, including
  Unicode digits such as ``²`` or ``٣``, is an unknown id (404) or a malformed offset (400).
- **Durations**: fixed by default; with ``durations.sigma`` > 0 each job's total is log-normal
  around its configured duration (the median), drawn from its own seeded generator.
"""

from __future__ import annotations

from typing import Any

from aep_activator.aepsim.state.activation import RunPage, StartedRun
from aep_activator.aepsim.state.dataflows import DataflowState

__all__ = ["RunPage", "SimulatorState", "StartedRun"]


class SimulatorState(DataflowState):
    """All simulated AEP state. Every public method is atomic under one lock.

    Out-of-band helpers (what the AEP UI or AEP's scheduler would create, for tests and the admin
    API): ``create_segment_job(..., source="ui" | "scheduler")``, ``create_export_job(...)`` (export
    jobs record no creator, so one made out of band looks like any other) and
    ``start_scheduled_run(flow_id, audiences, sandbox_name=...)``.
    """

    def job_counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {status: count}}`` as of now, over every sandbox."""
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

"""What one step execution counts for the metrics, written with the change it leaves with (no extra trip).

The runner wraps the domain step in :func:`observe` (each AEP request: route template, method, status,
duration) and, before it leaves, :func:`count` adds the execution's outcome, the step's duration once
the step is done (from ``step_since``, waits included), adoptions and AEP conflicts to ``Change.metrics``.
``run_leave.lua`` applies them with HINCRBY in the script the step runs anyway; an execution that
loses its lease writes nothing, its counters included. Requests made outside a step (a cancel's
DELETE from the CLI or the API) are not counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aep_activator.aep.api.observe import Observation, observing
from aep_activator.aep.coordination.metrics import StepMeter
from aep_activator.aep.coordination.runs import Change, RunRecord, RunStatus
from aep_activator.aep.pipeline.steps.base import WaitKind

log = logging.getLogger(__name__)

_OUTCOMES = {RunStatus.SUCCEEDED: "done", RunStatus.FAILED: "failed", RunStatus.CANCELLED: "cancelled"}


@contextmanager
def observe(meter: StepMeter) -> Iterator[None]:
    """Count (and log) every AEP request sent inside the block."""

    def seen(o: Observation) -> None:
        meter.request(o.route, o.method, o.status, o.duration_s)
        log.info("AEP %s %s answered %s in %.3fs", o.method, o.route, o.status, o.duration_s)

    with observing(seen):
        yield


def count(meter: StepMeter, step: str, record: RunRecord, change: Change, now: float) -> None:
    """Put this execution's counters into ``change.metrics``."""
    if change.finish_status is not None:
        outcome = _OUTCOMES.get(change.finish_status, "done")
    elif change.next is not None and change.next.same_step:
        outcome = "wait"
    else:
        outcome = "done"
    meter.execution(step, outcome)
    if outcome == "done" and record.step_since:
        meter.step_done(step, now - record.step_since)
    if any(e.event == "adopted" for e in change.events):
        meter.adoption(step)
    if outcome == "wait" and change.set.get("wait_kind") == WaitKind.CONFLICT.value and "blocker" in change.set:
        meter.conflict()  # AEP answered "Run already going on" to this execution's POST
    change.metrics = meter.increments()

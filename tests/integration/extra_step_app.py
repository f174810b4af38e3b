"""A worker app whose plan has a seventh step: loaded with ``celery -A tests.integration.extra_step_app worker``.

Adding a step is one plan entry plus its domain function, and nothing else: the Celery task, its name,
its successor, which step finishes a run, the fence and the delay queue all come from the plan. The last
two lines stand in for editing ``PLAN`` in aep/pipeline/plan.py: this process runs the extended plan and
has a task for each of its steps.
"""

from __future__ import annotations

from aep_activator.aep.coordination.runs import Event
from aep_activator.aep.pipeline.plan import PLAN, Step
from aep_activator.aep.pipeline.steps.base import Done, Outcome, StepContext, Wait, WaitKind
from aep_activator.tasks import runtime
from aep_activator.tasks.celery import app
from aep_activator.tasks.steps import register

EXTRA = "confirm_delivery"


def confirm_delivery(ctx: StepContext) -> Outcome:
    """The domain function: read back each flow run from AEP; the first look waits once (a poll's path)."""
    if ctx.run.wait_kind != WaitKind.AEP.value:
        return Wait(0.2, "confirming the flow runs with AEP", WaitKind.AEP)
    statuses = [ctx.client.flow_runs.get(o["run_id"]).status.value for o in ctx.run.flow_runs]
    detail = f"{len(statuses)} flow runs read back: {', '.join(statuses)}"
    return Done({"confirmed": statuses}, events=(Event(EXTRA, "confirmed", detail),))


EXTENDED = PLAN.with_step(Step(EXTRA, confirm_delivery), after="poll_activation")

runtime.use_plan(EXTENDED)
register(app, EXTENDED)

__all__ = ["EXTENDED", "app"]

"""A plan with a seventh step: the shipped plan plus one ``Step`` and its domain function, and nothing else.

Importing this module changes nothing in the importing process; ``extra_step_app.py`` is what a
worker loads to run this plan (tests/integration/test_plan.py).
"""

from __future__ import annotations

from aep_activator.aep.coordination.runs import Event
from aep_activator.aep.pipeline.plan import PLAN, Step
from aep_activator.aep.pipeline.steps.base import Done, Outcome, StepContext, Wait, WaitKind

EXTRA = "confirm_delivery"


def confirm_delivery(ctx: StepContext) -> Outcome:
    """The domain function: read back each flow run from AEP; the first look waits once (a poll's path)."""
    if ctx.run.wait_kind != WaitKind.AEP.value:
        return Wait(0.2, "confirming the flow runs with AEP", WaitKind.AEP)
    statuses = [ctx.client.flow_runs.get(o["run_id"]).status.value for o in ctx.run.flow_runs]
    detail = f"{len(statuses)} flow runs read back: {', '.join(statuses)}"
    return Done({"confirmed": statuses}, events=(Event(EXTRA, "confirmed", detail),))


EXTENDED = PLAN.with_step(Step(EXTRA, confirm_delivery), after="poll_activation")

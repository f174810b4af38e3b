"""Checks before a run spends a scarce slot, from what AEP's Flow Service shows of each dataflow.

An on-demand segment job costs one of 2 a day and 50 a year; spending it on an activation AEP will
refuse wastes it. So before the run's first POST (its segment job, or its activation when it has none)
and again before the activation itself, the step reads each dataflow (``GET /flowservice/flows/{id}``):

- every audience must be mapped to its dataflow, or the run fails (``preflight``) naming them, having
  spent nothing (AEP: "… not part of this dataflow or out of schedule range!");
- an audience first activated less than an hour ago waits until the hour has passed (the ad-hoc spec:
  "At least one hour must have passed from the moment the audience was first activated");
- before the activation only: while a dataflow is processing a run AEP scheduled (``createdClient``
  other than ours), the run waits ("no ad-hoc job may run while the dataflow is processing a scheduled
  export"), instead of POSTing into AEP's "Run already going on".

Before a segment job (the scarcest slot) the dataflow is always read afresh. Before the activation a
worker may use what it read of that dataflow less than a minute ago (``dataflows.py``): a dataflow
names every audience mapped to it, so with hundreds mapped its answer is large, and many runs on one
dataflow each read it. Only a positive answer is reused (an audience the copy does not map is looked
up again before the run fails), and a first-activation time never changes once an audience is mapped.
An audience unmapped in that minute is refused by AEP at the activation's POST instead (a 400, so its
slot is refunded). The scheduled-export check always asks AEP.
"""

from __future__ import annotations

from aep_activator.aep.api.errors import NotFound, PreflightRefused
from aep_activator.aep.coordination.runs import Event
from aep_activator.aep.pipeline.steps.base import StepContext, Wait, WaitKind

FIRST_ACTIVATION_WAIT_S = 3600.0


def check(ctx: StepContext, *, before_activation: bool) -> Wait | None:
    """None when the run may spend its slot now; a wait, or ``PreflightRefused``."""
    now = ctx.now()
    for flow_id, audiences in ctx.request.activation_info.items():
        try:
            if ctx.dataflows is None:
                mapped = ctx.client.flows.get(flow_id).mapped_audiences()
            else:
                mapped = ctx.dataflows.mapped(ctx.client, flow_id, audiences, fresh=not before_activation)
        except NotFound:
            raise PreflightRefused(f"dataflow {flow_id} does not exist in this sandbox; nothing was spent") from None
        unmapped = [a for a in audiences if a not in mapped]
        if unmapped:
            raise PreflightRefused(
                f"audience{'s' if len(unmapped) > 1 else ''} {', '.join(unmapped)} not mapped to dataflow {flow_id}: "
                "map it in AEP first; nothing was spent"
            )
        recent = {a: mapped[a] for a in audiences if mapped[a] > now - FIRST_ACTIVATION_WAIT_S}
        if recent:
            until = max(recent.values()) + FIRST_ACTIVATION_WAIT_S
            reason = (f"audience {', '.join(recent)} was first activated on dataflow {flow_id} less than an hour ago; "
                      "AEP allows an ad-hoc run an hour after that")  # fmt: skip
            return Wait(max(1.0, until - now), reason, WaitKind.CONFLICT,
                        events=(Event(ctx.step, "waiting", reason, key="wait:preflight"),))  # fmt: skip
        if before_activation:
            running = [r for r in ctx.client.flow_runs.list(flow_id=flow_id, status="processing", limit=10).items
                       if r.createdClient != ctx.config.client_id]  # fmt: skip
            if running:
                reason = f"dataflow {flow_id} is processing a scheduled export (flow run {running[0].id})"
                return Wait(ctx.config.activation_poll.initial_s, reason, WaitKind.CONFLICT,
                            events=(Event(ctx.step, "waiting", reason, key="wait:scheduled-export"),))  # fmt: skip
    return None

"""Steps 5 and 6: the ad-hoc activation (``POST /adhocrun``) and its flow runs.

https://experienceleague.adobe.com/en/docs/experience-platform/destinations/api/ad-hoc-activation-api

One run per audience at a time: the step takes our audience locks (all or nothing) before it POSTs.
AEP's own "Run already going on for audience … with run id R" answers a POST of ours, so that POST's
outcome is known (refused): its slot is refunded, and the run waits for R to end, then POSTs.

*Presumed ours*: after a POST whose answer was lost, the step never POSTs again while that outcome is
unknown; it looks (looks.py). A flow run created after our intent by our own client, still processing,
is presumed ours: the step polls it until it ends and adopts it once its entities confirm our
audiences. So a Conflict naming a run created after our intent cannot come from our own lost POST
(we would be looking, not POSTing); whoever created it, the step waits for it like any other.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from aep_activator.aep.api.errors import (
    AEPError,
    Conflict,
    DeadlineExceeded,
    JobFailed,
    NotFound,
    OutcomeUnknown,
    refunds_quota,
)
from aep_activator.aep.api.models import FLOW_RUN_TERMINAL, FlowRunStatus
from aep_activator.aep.coordination.runs import Event
from aep_activator.aep.pipeline.scopes import Quota
from aep_activator.aep.pipeline.steps import looks, preflight
from aep_activator.aep.pipeline.steps.base import Done, Outcome, StepContext, Wait, WaitKind, spend_or_wait
from aep_activator.aep.pipeline.steps.polls import (
    activation_took,
    flow_run_took,
    lost_answer,
    observation,
    poll_delay,
    still_looking,
)

KIND = "flow_run"
_TERMINAL = {s.value for s in FLOW_RUN_TERMINAL}


def run(ctx: StepContext) -> Outcome:
    record, req = ctx.run, ctx.request
    if record.flow_runs:
        return Done({"flow_runs": [o["run_id"] for o in record.flow_runs]})
    if ctx.step not in record.intents and not ctx.execution.in_turn(ctx.quota_specs(Quota.ADHOC)):
        # Out of turn, wait without taking the audiences: runs behind in line that took them, each for
        # an instant every poll, starved the run whose turn it was of its audience (a busy machine saw
        # the window's last slot unspent for minutes). The spend decides; this writes nothing.
        if wait := spend_or_wait(ctx, Quota.ADHOC):
            return wait
        ctx.execution.unintent(ctx.step)  # its turn came between the two reads: nothing was sent
    lock = ctx.locks.acquire(req.audiences, record.run_id, ctx.config.audience_lock_ttl_s)
    if not lock.ok:
        holders = ", ".join(f"{a} (run {o})" for a, o in sorted(lock.conflicts.items()))
        return _wait_on_others(ctx, WaitKind.AUDIENCE, f"audiences busy in another run: {holders}")
    intent = record.intents.get(ctx.step)
    if intent is not None:
        if outcome := _look(ctx, intent):
            return outcome
        ctx.execution.unintent(ctx.step)  # proof: AEP did not accept that POST
    if record.blocker and (wait := _blocked(ctx, record.blocker)):
        return wait
    export_ids = [record.export_job_id] if req.version == 1 and record.export_job_id else None
    if req.version == 1 and not export_ids:
        raise JobFailed("ad-hoc v1 needs an export id, and this run has none", kind="activation")
    if wait := preflight.check(ctx, before_activation=True):
        ctx.locks.release(req.audiences, record.run_id)
        return wait
    if wait := spend_or_wait(ctx, Quota.ADHOC):
        # Do not sit on the audiences for hours until the window opens: other runs may need them.
        ctx.locks.release(req.audiences, record.run_id)
        return wait
    try:
        answer = ctx.client.activations.run(req.activation_info, export_ids=export_ids, version=req.version)
    except OutcomeUnknown as exc:
        return lost_answer(ctx, exc)  # keep the locks: our activation may be running
    except Conflict as exc:
        ctx.execution.unintent(ctx.step)
        return _conflict(ctx, exc)
    except AEPError as exc:
        if refunds_quota(exc):
            ctx.execution.unintent(ctx.step)
            ctx.locks.release(req.audiences, record.run_id)
        raise
    orders = [
        {"segment": o.segment, "order": o.order, "run_id": o.run_id, "status": "processing"} for o in answer.order
    ]
    return _activated(ctx, orders, "activated", _flow_runs(len(orders)))


def _flow_runs(n: int) -> str:
    return f"{n} flow run{'' if n == 1 else 's'}"


def _activated(ctx: StepContext, orders: list[dict[str, Any]], event: str, detail: str) -> Done:
    return Done(
        {"flow_runs": [o["run_id"] for o in orders]},
        set={"flow_runs": orders, "activated_at": ctx.now(), "aep_status": "processing"},
        delete=(f"intent:{ctx.step}", "blocker"),
        events=(Event(ctx.step, event, detail, pin=event == "adopted"),),
        claims=tuple((KIND, o["run_id"]) for o in orders) if event == "activated" else (),
        settle=ctx.step,
    )


def _wait_on_others(ctx: StepContext, kind: WaitKind, reason: str, **fields: Any) -> Wait:
    since = ctx.run.wait_since if ctx.run.wait_kind == kind.value and ctx.run.wait_since else ctx.now()
    waited = ctx.now() - since
    if waited > ctx.config.wait_deadline_s:
        raise DeadlineExceeded(f"{reason}; still waiting after {waited:.0f}s", kind="activation")
    event = Event(ctx.step, "waiting", reason, key=f"wait:{kind.value}")
    return Wait(ctx.config.activation_poll.initial_s, reason, kind, set=fields, events=(event,))


def _conflict(ctx: StepContext, exc: Conflict) -> Wait:
    who = exc.flow_run_id or "?"
    reason = f"AEP: run already going on for audience {exc.segment_id} (flow run {who}); POSTing once it ends"
    return _wait_on_others(ctx, WaitKind.CONFLICT, reason, blocker=who)


def _blocked(ctx: StepContext, blocker: str) -> Wait | None:
    """Wait while the flow run that refused our last POST is still processing; None once it ended."""
    try:
        status = ctx.client.flow_runs.get(blocker).status.value
    except NotFound:
        return None
    if status in _TERMINAL:
        return None
    return _wait_on_others(ctx, WaitKind.CONFLICT, f"AEP's flow run {blocker} holds our audiences ({status})")


def _look(ctx: StepContext, intent: float) -> Outcome | None:
    """Adopt our lost POST's flow runs, wait for runs presumed ours, or None on proof of absence."""
    orders: list[dict[str, Any]] = []
    presumed: list[str] = []
    unaccounted: list[str] = []
    seen_any = False
    complete = True
    for flow_id, audiences in ctx.request.activation_info.items():
        look = looks.flow_runs(ctx, flow_id, intent)
        complete = complete and look.complete
        mine = [r for r in look.found if not ctx.execution.owned_by_other(KIND, r.id)]
        confirmed: dict[str, Any] = {}
        for r in mine:
            if r.status.value in _TERMINAL:
                for a in audiences:
                    if f"segment:{a}" in looks.run_entities(r):
                        confirmed.setdefault(a, r)
            else:
                presumed.append(r.id)
        seen_any = seen_any or bool(confirmed) or any(r.status.value not in _TERMINAL for r in mine)
        for a in audiences:
            if a in confirmed:
                r = confirmed[a]
                took = flow_run_took(r)  # it ended before we knew of it: only AEP's dates time it
                orders.append({"segment": a, "order": flow_id, "run_id": r.id, "status": r.status.value,
                               **({"took": took} if took is not None else {})})  # fmt: skip
            else:
                unaccounted.append(f"{a}→{flow_id}")
    if not unaccounted and all(ctx.execution.claim(KIND, o["run_id"]) for o in orders):
        return _activated(ctx, orders, "adopted", f"{_flow_runs(len(orders))} of a POST whose answer was lost")
    if presumed:
        ids = ", ".join(presumed)
        reason = f"{_flow_runs(len(presumed))} ({ids}) presumed ours, created after our POST, still running"
        return Wait(ctx.config.activation_poll.initial_s, reason, WaitKind.AEP)
    if seen_any:
        # Some dataflows ran for us and others did not: wait for AEP's lists to settle, then give up.
        wait = still_looking(ctx, looks.Look(complete=False), intent, f"flow runs for {', '.join(unaccounted)}")
        assert wait is not None
        return wait
    return still_looking(ctx, looks.Look(complete), intent, "the flow runs")


def poll(ctx: StepContext) -> Outcome:
    record, req = ctx.run, ctx.request
    orders = [dict(o) for o in record.flow_runs]
    if not orders:
        raise JobFailed("no flow runs recorded for this run", kind="activation")
    watched = not all(o.get("status") in _TERMINAL for o in orders)  # else all ended before an adopting look
    for order in orders:
        if order.get("status") in _TERMINAL:
            continue
        try:
            run = ctx.client.flow_runs.get(order["run_id"])
        except NotFound:
            order["status"] = "processing"  # not visible yet: AEP's run list is eventually consistent
            continue
        order["status"] = run.status.value
        took = flow_run_took(run) if order["status"] in _TERMINAL else None
        if took is not None:
            order["took"] = took  # kept: a later poll does not read a finished run again
    statuses = ",".join(sorted({o["status"] for o in orders}))
    fields = {"flow_runs": orders, "aep_status": statuses}
    if all(o["status"] in _TERMINAL for o in orders):
        failed = [o for o in orders if o["status"] != FlowRunStatus.SUCCESS.value]
        if failed:
            names = ", ".join(f"{o['segment']}→{o['order']} ({o['status']})" for o in failed)
            raise JobFailed(f"{len(failed)} of {len(orders)} flow run{_s(orders)} did not succeed: {names}",
                            kind="activation", aep_status="failed")  # fmt: skip
        took = activation_took(ctx, orders, record.activated_at or record.created_at,
                               ctx.config.activation_poll.deadline_s, timed=watched)  # fmt: skip
        return Done({"flow_runs": [o["run_id"] for o in orders], "status": "success"}, set=fields,
                    events=(Event(ctx.step, "succeeded", "all flow runs succeeded"),),
                    observed=observation(ctx, "activation", took))  # fmt: skip
    schedule = ctx.config.activation_poll
    started = record.activated_at or record.created_at
    if ctx.now() > started + schedule.deadline_s:
        raise DeadlineExceeded(f"flow runs still {statuses} after {schedule.deadline_s:.0f}s", kind="activation")
    ctx.locks.refresh(req.audiences, record.run_id, ctx.config.audience_lock_ttl_s)
    pending = sum(o["status"] not in _TERMINAL for o in orders)
    delay = poll_delay(ctx, "activation", schedule, ctx.now() - started)
    return Wait(delay, f"{pending} of {len(orders)} flow run{_s(orders)} still running", WaitKind.AEP, set=fields)


def _s(items: Sized) -> str:
    """The plural ending for a count: "1 of 1 flow run", "1 of 2 flow runs"."""
    return "" if len(items) == 1 else "s"

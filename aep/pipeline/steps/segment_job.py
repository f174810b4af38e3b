"""Steps 1 and 2: the on-demand segment job (``POST /segment/jobs``) and its poll.

https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/api/segment-jobs
"""

from __future__ import annotations

from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import AEPError, OutcomeUnknown, refunds_quota
from aep_activator.aep.api.models import SEGMENT_JOB_TERMINAL
from aep_activator.aep.coordination.runs import Event, RunRecord
from aep_activator.aep.pipeline.scopes import Quota
from aep_activator.aep.pipeline.steps import looks, preflight
from aep_activator.aep.pipeline.steps.base import Done, Outcome, StepContext, spend_or_wait
from aep_activator.aep.pipeline.steps.polls import cancel_quietly, lost_answer, poll_job, still_looking

KIND = "segment_job"


def create(ctx: StepContext) -> Outcome:
    run = ctx.run
    if run.segment_job_id:
        return Done({"segment_job_id": run.segment_job_id})
    ids = ctx.request.evaluation_segment_ids
    intent = run.intents.get(ctx.step)
    if intent is not None:
        look = looks.segment_job(ctx, ids, intent)
        for job in look.found:
            if ctx.execution.claim(KIND, job.id):
                detail = f"segment job {job.id} (its POST's answer was lost)"
                return _recorded(ctx, job.id, job.status.value, "adopted", detail)
        if wait := still_looking(ctx, look, intent, "the segment job"):
            return wait
        ctx.execution.unintent(ctx.step)  # proof: AEP did not accept that POST
    if wait := preflight.check(ctx, before_activation=False):
        return wait
    if wait := spend_or_wait(ctx, Quota.SEGMENT_JOBS):
        return wait
    try:
        job = ctx.client.segment_jobs.create(ids)
    except OutcomeUnknown as exc:
        return lost_answer(ctx, exc)
    except AEPError as exc:
        if refunds_quota(exc):
            ctx.execution.unintent(ctx.step)
        raise
    return _recorded(ctx, job.id, job.status.value, "created", f"segment job {job.id}", claim=True)


def _recorded(ctx: StepContext, job_id: str, status: str, event: str, detail: str, *, claim: bool = False) -> Done:
    return Done(
        {"segment_job_id": job_id},
        set={"segment_job_id": job_id, "aep_status": status},
        delete=(f"intent:{ctx.step}",),
        events=(Event(ctx.step, event, detail, pin=event == "adopted"),),
        claims=((KIND, job_id),) if claim else (),
        settle=ctx.step,
    )


def poll(ctx: StepContext) -> Outcome:
    jobs = ctx.client.segment_jobs
    return poll_job(
        ctx, kind="segment", job_id=ctx.run.segment_job_id, get=jobs.get, cancel=jobs.cancel,
        terminal=SEGMENT_JOB_TERMINAL, schedule=ctx.config.segment_poll,
    )  # fmt: skip


def cancel(client: AEPClient, run: RunRecord) -> None:
    """DELETE the run's segment job unless AEP already ended it."""
    if run.segment_job_id and (run.aep_status or "").upper() not in {s.value for s in SEGMENT_JOB_TERMINAL}:
        cancel_quietly(lambda: client.segment_jobs.cancel(run.segment_job_id or ""))

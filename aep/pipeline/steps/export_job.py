"""Steps 3 and 4 (ad-hoc v1 only): the export job (``POST /export/jobs``) and its poll.

https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/api/export-jobs
Export jobs spend no quota; their POST is still never sent twice while its outcome is unknown.
"""

from __future__ import annotations

from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import AEPError, JobFailed, OutcomeUnknown, refunds_quota
from aep_activator.aep.api.models import EXPORT_JOB_TERMINAL
from aep_activator.aep.coordination.runs import Event, RunRecord
from aep_activator.aep.pipeline.steps import looks
from aep_activator.aep.pipeline.steps.base import Done, Outcome, StepContext
from aep_activator.aep.pipeline.steps.polls import cancel_quietly, lost_answer, poll_job, still_looking

KIND = "export_job"


def create(ctx: StepContext) -> Outcome:
    run = ctx.run
    if run.export_job_id:
        return Done({"export_job_id": run.export_job_id})
    spec = ctx.request.export_job
    if spec is None:
        raise JobFailed("this run has no export job spec", kind="export")
    intent = run.intents.get(ctx.step)
    if intent is not None:
        look = looks.export_job(ctx, intent)
        for job in look.found:
            if ctx.execution.claim(KIND, job.id):
                return _recorded(ctx, job.id, job.status.value, "adopted", f"export job {job.id} (answer was lost)")
        if wait := still_looking(ctx, look, intent, "the export job"):
            return wait
        ctx.execution.unintent(ctx.step)
    ctx.execution.intent(ctx.step, [])  # no quota: export jobs are not limited
    try:
        job = ctx.client.export_jobs.create(spec)
    except OutcomeUnknown as exc:
        return lost_answer(ctx, exc)
    except AEPError as exc:
        if refunds_quota(exc):
            ctx.execution.unintent(ctx.step)
        raise
    return _recorded(ctx, job.id, job.status.value, "created", f"export job {job.id}", claim=True)


def _recorded(ctx: StepContext, job_id: str, status: str, event: str, detail: str, *, claim: bool = False) -> Done:
    return Done(
        {"export_job_id": job_id},
        set={"export_job_id": job_id, "aep_status": status},
        delete=(f"intent:{ctx.step}",),
        events=(Event(ctx.step, event, detail, pin=event == "adopted"),),
        claims=((KIND, job_id),) if claim else (),
        settle=ctx.step,
    )


def poll(ctx: StepContext) -> Outcome:
    jobs = ctx.client.export_jobs
    return poll_job(
        ctx, kind="export", job_id=ctx.run.export_job_id, get=jobs.get, cancel=jobs.cancel,
        terminal=EXPORT_JOB_TERMINAL, schedule=ctx.config.export_poll,
    )  # fmt: skip


def cancel(client: AEPClient, run: RunRecord) -> None:
    if run.export_job_id and (run.aep_status or "").upper() not in {s.value for s in EXPORT_JOB_TERMINAL}:
        cancel_quietly(lambda: client.export_jobs.cancel(run.export_job_id or ""))

"""The chain's Celery tasks, made from the plan: one thin task per step, named ``activation.<step>``.

Each task's arguments are the run id and the carrier ``seq`` of its wake-up (small JSON, no secret);
it calls :func:`tasks.runner.execute`. Tasks are acknowledged on receipt: a broker message is only a
wake-up, and the run's carrier in Redis is what is never lost. No result is stored: Flower reads
task events, and the run ledger holds every outcome.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task, signals
from celery.exceptions import Ignore, Retry

from aep_activator.aep.pipeline.plan import PLAN, TASK_PREFIX, TASK_START, Plan, Step
from aep_activator.tasks.celery import app
from aep_activator.tasks.runner import execute


def register(celery_app: Celery, plan: Plan) -> None:
    """Register a task for every step of ``plan`` that has none yet (idempotent)."""
    for step in plan.steps:
        if step.task_name not in celery_app.tasks:
            _task_for(celery_app, step)


def _task_for(celery_app: Celery, step: Step) -> Task:
    def run(self: Task, run_id: str, seq: int = -1) -> dict[str, Any]:
        from aep_activator.tasks.runtime import runtime

        return execute(self, runtime().plan[step.name], run_id, seq)

    run.__name__ = step.name
    run.__doc__ = f"Step {step.name} of an activation run (arguments: run id, carrier seq)."
    task: Task = celery_app.task(
        bind=True, name=step.task_name, acks_late=False, ignore_result=True, typing=False, max_retries=None
    )(run)
    return task


register(app, PLAN)


@signals.task_postrun.connect(weak=False)
def _forget_traceback(sender: Task | None = None, retval: Any = None, **_: Any) -> None:
    """Drop the traceback of the ``Retry`` (a wait) or ``Ignore`` (a dropped message) a step ended with.

    Celery's tracer keeps that exception's ``ExceptionInfo`` in its own frame, which the traceback
    references: a cycle that only the cyclic collector frees, and it seldom runs (the info copies
    every frame's ``co_positions``, hundreds of KB of tuples it does not track). Every wait left one,
    and a pool child grew by ~120 MB over 10,000 waits. Celery has logged the exception by now (the
    text stays in ``einfo.traceback``); without the traceback the info is freed with the frame.
    """
    if isinstance(retval, Retry | Ignore) and sender is not None and str(sender.name).startswith(TASK_PREFIX):
        retval.__traceback__ = None


@app.task(bind=True, name=TASK_START, acks_late=True)
def start(self: Task, **request: Any) -> dict[str, Any]:
    """Public entry: ``send_task("activation.start", kwargs=<ActivationRequest JSON>, queue=AEP_QUEUE)``.

    Validates exactly like :func:`aep_activator.start_activation`; an invalid request fails this task with
    the validation message and starts nothing. The same ``idempotency_key`` returns the same run id.
    Kombu's Redis transport can lose a message between BRPOP and its unacked record, before any run is
    recorded: services that need every request carried should use the Python producer (or the HTTP API),
    which records the run before any message exists.
    """
    from aep_activator.tasks.producer import start

    # A redelivered start message (the worker died after recording the run) must not start a second
    # run: without a producer's key, the message's own id is the idempotency key.
    request.setdefault("idempotency_key", f"task:{self.request.id}")
    request.setdefault("started_by", "send_task")
    created = start(request)
    admission = created.admission.to_dict() if created.admission else None
    return {"run_id": created.run_id, "verdict": created.verdict, "admission": admission}

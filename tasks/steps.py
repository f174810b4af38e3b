"""The chain's tasks. Each is thin: fence, call one domain step, return a small dict of ids.

Task names are the step names (Flower shows them); arguments are only the run id.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from aep_activator.aep.pipeline import plan as c
from aep_activator.aep.pipeline import steps as activation
from aep_activator.tasks.celery import app
from aep_activator.tasks.policy import StepTask, run_step


def _poll_free(step: Any) -> Any:
    # create steps take no attempt number; give every step one signature.
    return lambda ctx, run, attempt: step(ctx, run)


@app.task(bind=True, base=StepTask, name=c.TASK_CREATE_SEGMENT_JOB, step_index=0)
def create_segment_job(self: Task, run_id: str) -> dict[str, Any]:
    return run_step(self, run_id, _poll_free(activation.create_segment_job))


@app.task(bind=True, base=StepTask, name=c.TASK_POLL_SEGMENT_JOB, step_index=1)
def poll_segment_job(self: Task, run_id: str) -> dict[str, Any]:
    return run_step(self, run_id, activation.poll_segment_job)


@app.task(bind=True, base=StepTask, name=c.TASK_CREATE_EXPORT_JOB, step_index=2)
def create_export_job(self: Task, run_id: str) -> dict[str, Any]:
    return run_step(self, run_id, _poll_free(activation.create_export_job))


@app.task(bind=True, base=StepTask, name=c.TASK_POLL_EXPORT_JOB, step_index=3)
def poll_export_job(self: Task, run_id: str) -> dict[str, Any]:
    return run_step(self, run_id, activation.poll_export_job)


@app.task(bind=True, base=StepTask, name=c.TASK_RUN_ACTIVATION, step_index=4)
def run_activation(self: Task, run_id: str) -> dict[str, Any]:
    return run_step(self, run_id, _poll_free(activation.run_activation))


@app.task(bind=True, base=StepTask, name=c.TASK_POLL_ACTIVATION, step_index=5)
def poll_activation(self: Task, run_id: str) -> dict[str, Any]:
    return run_step(self, run_id, activation.poll_activation)


@app.task(bind=True, name=c.TASK_START, acks_late=True)
def start(self: Task, **request: Any) -> dict[str, Any]:
    """Public entry: ``send_task("activation.start", kwargs=<ActivationRequest JSON>)`` from any service.

    Validates exactly like :func:`tasks.start_activation`; an invalid request fails this task with the
    validation message and starts nothing. The same ``idempotency_key`` returns the same run id.
    """
    from aep_activator.tasks.producer import start_activation

    # A redelivered start message (the worker died after recording the run) must not start a second
    # run: without a producer's key, the message's own id is the idempotency key.
    request.setdefault("idempotency_key", f"task:{self.request.id}")
    return {"run_id": start_activation(request)}

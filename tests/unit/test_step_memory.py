"""A step that waits leaves no garbage cycle behind (tasks/steps.py, ``_forget_wait_traceback``).

A wait ends the task by raising ``Retry``. Celery's tracer keeps its ``ExceptionInfo`` (which copies
every frame's ``co_positions``: hundreds of KB for Celery's own trace function) in the tracing
frame, which the ``Retry``'s traceback references: a cycle only the cyclic collector frees, and it
rarely runs, since the copied tuples are not tracked. 10,000 waits grew each pool child by ~120 MB.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from celery.app.trace import build_tracer
from celery.exceptions import Retry

from aep_activator.aep.pipeline.plan import PLAN
from aep_activator.tasks import steps
from aep_activator.tasks.celery import app


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def cyclic_garbage() -> list[Any]:
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    gc.set_debug(0)
    found = list(gc.garbage)
    gc.garbage.clear()
    return found


def trace_a_wait(monkeypatch: pytest.MonkeyPatch, task_name: str) -> Any:
    def waits(task: Any, step: Any, run_id: str, seq: int) -> dict[str, Any]:
        raise Retry("AEP job still running", exc=ValueError("still running"), when=30.0)

    monkeypatch.setattr(steps, "execute", waits)
    task = app.tasks[task_name]
    tracer = build_tracer(task.name, task, eager=False, propagate=False, app=app)
    return tracer("run-1.x.0", ("run-1", 3), {}, {"id": "run-1.x.0", "delivery_info": {}})


def test_a_waiting_step_leaves_no_exception_info_in_a_cycle(
    monkeypatch: pytest.MonkeyPatch, no_collector: None
) -> None:
    traced = trace_a_wait(monkeypatch, PLAN.steps[1].task_name)
    assert traced[1].state == "RETRY"  # the tracer did handle a retry
    del traced
    garbage = cyclic_garbage()
    assert not [o for o in garbage if isinstance(o, ExceptionInfo)]
    assert not [o for o in garbage if isinstance(o, FrameType)]  # nor the frames (and their locals)
    # Celery's Retry holds itself in its args, a small cycle of its own: it must no longer hold a traceback.
    assert all(o.__traceback__ is None for o in garbage if isinstance(o, Retry))

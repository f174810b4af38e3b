"""A step that waits (or is dropped) leaves no garbage cycle (tasks/steps.py, ``_forget_traceback``).

A wait ends the task by raising ``Retry``, a dropped message by raising ``Ignore``. Celery's tracer
keeps the exception's ``ExceptionInfo`` (which copies every frame's ``co_positions``: hundreds of KB
for Celery's own trace function) in the tracing frame, which the exception's traceback references: a
cycle only the cyclic collector frees, and it rarely runs, since the copied tuples are not tracked.
10,000 waits grew each pool child by ~120 MB.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from celery.app.trace import build_tracer
from celery.exceptions import Ignore, Retry

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


def trace_a_step(monkeypatch: pytest.MonkeyPatch, task_name: str, raises: Callable[[], BaseException]) -> Any:
    def ends(task: Any, step: Any, run_id: str, seq: int) -> dict[str, Any]:
        raise raises()

    monkeypatch.setattr(steps, "execute", ends)
    task = app.tasks[task_name]
    tracer = build_tracer(task.name, task, eager=False, propagate=False, app=app)
    return tracer("run-1.x.0", ("run-1", 3), {}, {"id": "run-1.x.0", "delivery_info": {}})


@pytest.mark.parametrize(
    ("raises", "state"),
    [(lambda: Retry("AEP job still running", exc=ValueError("running"), when=30.0), "RETRY"), (Ignore, "IGNORED")],
    ids=["wait", "dropped"],
)
def test_a_step_that_waits_or_is_dropped_leaves_no_exception_info_in_a_cycle(
    monkeypatch: pytest.MonkeyPatch, no_collector: None, raises: Callable[[], BaseException], state: str
) -> None:
    traced = trace_a_step(monkeypatch, PLAN.steps[1].task_name, raises)
    assert traced[1].state == state  # the tracer did handle a retry / an ignore
    del traced
    garbage = cyclic_garbage()
    assert not [o for o in garbage if isinstance(o, ExceptionInfo)]
    assert not [o for o in garbage if isinstance(o, FrameType)]  # nor the frames (and their locals)
    # Celery's Retry holds itself in its args, a small cycle of its own: it must no longer hold a traceback.
    assert all(o.__traceback__ is None for o in garbage if isinstance(o, Retry | Ignore))

"""The overhead baseline: a bare Celery app of no-op tasks, configured exactly like ours.

``create_noop_app(settings)`` takes ``tasks.celery.celery_config(settings)`` whole (broker, result
backend, json serializer, prefetch multiplier 1, task events, time limits, visibility timeout) and only
drops our task imports and our ``broker_transport`` (``tasks/transport.py``: kombu's Redis transport
with one client per pool, part of our machinery, not Celery's); there is no watchdog. Each no-op task
is declared like one of our steps (``tasks/steps.py``: ``acks_late=False``, ``ignore_result=True``),
except the last of a chain, which stores its result so the bench can read when the chain finished
(our run writes its end into its record the same way). A chain has as many tasks as our run has
steps (``BENCH_NOOP_TASKS``, default 6).
The queue is ``settings.aep_queue``, so the bench gives the baseline a queue of its own on the same Redis.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, chain

from aep_activator.config.settings import Settings
from aep_activator.tasks.celery import celery_config

DEFAULT_TASKS = 6


def task_names(n: int) -> tuple[str, ...]:
    """``n`` task names; the last one, which stores its result, is named for that (``bench.noop_last``)."""
    return (*(f"bench.noop_{i}" for i in range(1, n)), "bench.noop_last")


def _noop(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id}


def _last(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id}


def create_noop_app(settings: Settings, n: int | None = None) -> Celery:
    n = n or int(os.environ.get("BENCH_NOOP_TASKS", DEFAULT_TASKS))
    # set_as_current=False: the bench process produces our runs through our app, which must stay current.
    app = Celery("bench_noop", set_as_current=False)
    config = {**celery_config(settings), "imports": []}
    config["broker_transport"] = None  # stock kombu, chosen by the URL's scheme: the baseline is bare Celery
    app.config_from_object(config)
    *steps, last = task_names(n)
    for name in steps:
        app.task(name=name, acks_late=False, ignore_result=True, typing=False)(_noop)
    app.task(name=last, acks_late=False, ignore_result=False, typing=False)(_last)
    app.conf.bench_tasks = n
    return app


def send_noop_chain(app: Celery, run_id: str) -> str:
    """Enqueue one bare chain (immutable signatures by name); returns the id of its last task."""
    canvas = chain(*(app.signature(name, args=(run_id,), immutable=True) for name in task_names(app.conf.bench_tasks)))
    canvas.freeze()
    last: str = canvas.tasks[-1].id
    canvas.apply_async()
    return last

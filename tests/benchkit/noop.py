"""The overhead baseline: a bare Celery app with five no-op tasks, configured exactly like ours.

``create_noop_app(settings)`` takes ``workers.app.celery_config(settings)`` whole (broker, result
backend, json serializer, acks_late, prefetch multiplier 1, events, time limits, visibility timeout)
and only drops our task imports; there is no delay pump. The queue is ``settings.aep_queue``, so the
bench gives the baseline a queue of its own on the same Redis.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, chain

from aep_activator.config.settings import Settings
from aep_activator.tasks.celery import celery_config

NOOP_TASKS = tuple(f"bench.noop_{i}" for i in range(1, 6))


def _noop(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id}


def create_noop_app(settings: Settings) -> Celery:
    # set_as_current=False: the bench process produces our chains through `current_app`, which must stay ours.
    app = Celery("bench_noop", set_as_current=False)
    app.config_from_object({**celery_config(settings), "imports": []})
    for name in NOOP_TASKS:
        app.task(name=name, acks_late=True, typing=False)(_noop)
    return app


def send_noop_chain(app: Celery, run_id: str) -> str:
    """Enqueue one bare chain (immutable signatures by name, like ``tasks.producer.build_chain``).

    Returns the id of its last task, whose result marks the chain done.
    """
    canvas = chain(*(app.signature(name, args=(run_id,), immutable=True) for name in NOOP_TASKS))
    canvas.freeze()
    last: str = canvas.tasks[-1].id
    canvas.apply_async()
    return last

"""Publishing wake-ups: the broker message that tells a worker to run a run's current step now.

A wake-up carries only the run id and the carrier's ``seq`` (the fence admits it only while that is
the run's current carrier). Its task id is ``{run_id}.{step}.{generation}``: Flower shows one row per
step and generation, which moves RECEIVED → STARTED → RETRY … → SUCCESS as the step is checked
again. Losing a wake-up loses nothing (the run's carrier is in Redis and the watchdog publishes it
again), so publishing gives up quickly instead of blocking a worker through a Redis outage.

A wake-up is sent with ``ignore_result=True``: a step stores no result (``tasks/steps.py``), and
without it Celery's Redis result backend makes a producer outside a worker SUBSCRIBE to the task's
result channel for every wake-up it sends (``RedisBackend.on_task_call``), a round trip at enqueue
and a subscription that stays open in the producer. Nothing is lost: nothing ever publishes there.
"""

from __future__ import annotations

import logging

from celery import Celery

from aep_activator.aep.coordination.runs import task_id
from aep_activator.aep.pipeline.plan import TASK_PREFIX
from aep_activator.tasks.runtime import Runtime

log = logging.getLogger(__name__)

PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}


def publish(app: Celery, rt: Runtime, run_id: str, step: str, seq: int, generation: int) -> bool:
    """Send the wake-up; on failure make the carrier due now (best effort) and return False."""
    try:
        app.send_task(
            TASK_PREFIX + step,
            args=(run_id, seq),
            task_id=task_id(run_id, step, generation),
            queue=rt.settings.aep_queue,
            ignore_result=True,
            retry=True,
            retry_policy=PUBLISH_RETRY,
            # What Celery's saferepr would write for these two plain values, without its walk per publish.
            argsrepr=repr((run_id, seq)),
            kwargsrepr="{}",
        )
        return True
    except Exception as exc:  # the carrier covers it: never fail the caller for a lost wake-up
        log.warning("run %s: could not publish %s (%s); the watchdog will", run_id, step, exc)
        try:
            rt.carriers.due_now(run_id)
        except Exception:  # Redis is down too: the carrier's grace deadline still holds
            log.debug("run %s: could not make the carrier due now", run_id, exc_info=True)
        return False

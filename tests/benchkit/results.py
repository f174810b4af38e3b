"""Reading completion times from Celery's Redis result backend, and cleaning result keys up.

A bare chain is done when its *last* task's result is SUCCESS, and it finished at that result's
``date_done`` (``result_extended`` is on).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis

RESULT_PREFIX = "celery-task-meta-"


def result_times(client: redis.Redis, task_ids: list[str]) -> dict[str, float]:
    """``task id -> date_done`` (epoch s) of those that succeeded; raises ``RuntimeError`` on a FAILURE."""
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.get(RESULT_PREFIX + task_id)
    done: dict[str, float] = {}
    for task_id, raw in zip(task_ids, pipe.execute(), strict=True):
        meta: dict[str, Any] = json.loads(raw) if raw else {}
        status = meta.get("status")
        if status == "SUCCESS":
            done[task_id] = datetime.fromisoformat(meta["date_done"]).timestamp()
        elif status == "FAILURE":
            raise RuntimeError(f"task {task_id} failed: {meta.get('result')}")
    return done


def delete_results(client: redis.Redis, task_ids: list[str]) -> None:
    for i in range(0, len(task_ids), 1000):
        client.delete(*[RESULT_PREFIX + t for t in task_ids[i : i + 1000]])

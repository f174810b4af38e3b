"""Reading completion times from Celery's Redis result backend, and cleaning result keys up.

Both the baseline and our chain are timed the same way: a chain is done when its *last* task's result
is SUCCESS, and it finished at that result's ``date_done`` (``result_extended`` is on in both apps).
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import redis

RESULT_PREFIX = "celery-task-meta-"


def wait_results(client: redis.Redis, task_ids: list[str], timeout_s: float, poll_s: float = 0.2) -> list[float]:
    """Block until every task's result is SUCCESS; return their ``date_done`` as epoch seconds.

    Raises ``RuntimeError`` on a FAILURE result and ``TimeoutError`` past ``timeout_s``.
    """
    done: dict[str, float] = {}
    pending = list(task_ids)
    deadline = time.monotonic() + timeout_s
    while pending:
        pipe = client.pipeline(transaction=False)
        for task_id in pending:
            pipe.get(RESULT_PREFIX + task_id)
        still = []
        for task_id, raw in zip(pending, pipe.execute(), strict=True):
            meta = json.loads(raw) if raw else None
            status = meta and meta.get("status")
            if status == "SUCCESS":
                done[task_id] = datetime.fromisoformat(meta["date_done"]).timestamp()
            elif status == "FAILURE":
                raise RuntimeError(f"task {task_id} failed: {meta.get('result')}")
            else:
                still.append(task_id)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(task_ids)} chains not done after {timeout_s:.0f}s")
            time.sleep(poll_s)
    return [done[t] for t in task_ids]


def delete_results(client: redis.Redis, task_ids: list[str]) -> None:
    for i in range(0, len(task_ids), 1000):
        client.delete(*[RESULT_PREFIX + t for t in task_ids[i : i + 1000]])

"""Periodic tasks beat sends besides the schedules: the reconciliation with AEP's own records."""

from __future__ import annotations

from typing import Any

from aep_activator.tasks.celery import app

TASK_RECONCILE = "activation.reconcile"


@app.task(name=TASK_RECONCILE, acks_late=True, ignore_result=False)
def reconcile() -> dict[str, Any]:
    """Learn what AEP counts that we did not spend (tasks/reconcile.py); never POSTs. Safe to run twice."""
    import json

    from aep_activator.tasks.reconcile import reconcile as run
    from aep_activator.tasks.runtime import runtime

    result: dict[str, Any] = json.loads(run(runtime()).to_json())
    return result

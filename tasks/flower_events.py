"""Task events sent on behalf of a run, so Flower shows what the run ledger knows.

A cancelled run's waiting step is a task Flower last saw as RETRY; no worker will run it again (its
carrier is gone), so nothing would ever tell Flower it ended. ``show_revoked`` sends the
``task-revoked`` event Flower (and ``celery events``) understands for that task id.
"""

from __future__ import annotations

import logging

from celery import Celery

log = logging.getLogger(__name__)


def show_revoked(app: Celery, task_id: str) -> None:
    try:
        with app.events.default_dispatcher() as dispatcher:
            dispatcher.send("task-revoked", uuid=task_id, terminated=False, signum=None, expired=False)
    except Exception as exc:  # display only: never fail a cancel for it
        log.warning("could not tell Flower that task %s was revoked: %s", task_id, exc)

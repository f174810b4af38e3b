"""Our Celery app with every Redis round trip counted by purpose: ``celery -A tests.benchkit.counted_app``.

Runs ``workers.app`` unchanged. In each process (the main one and every pool child) it wraps
redis-py's ``Redis.execute_command`` (one command, one round trip) and ``Pipeline.execute`` (one round
trip for the whole pipeline) and names the purpose of each from the innermost frame of ours on the
stack (:data:`PURPOSES`); Celery's and kombu's own traffic (task events, the broker) has no frame of
ours below it. Each pool child writes ``<BENCH_COUNT_DIR>/child-<pid>.json`` after every task
(``{"tasks": n, "trips": {purpose: n}, "commands": {purpose: n}}``). Walking the stack costs CPU, so
the throughput figures come from an uncounted worker; this one only divides.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import redis.client
from celery import signals

from aep_activator.workers import app

__all__ = ["app", "purpose"]

_DIR = os.environ.get("BENCH_COUNT_DIR")

# (file, function) of ours -> purpose; None as function: any function of that file. First match wins.
PURPOSES: tuple[tuple[str, str | None, str], ...] = (
    ("aep/coordination/runs.py", "enter", "fence: enter (run_enter.lua: fence, lease, record)"),
    ("aep/coordination/runs.py", "leave", "ledger: leave (run_leave.lua: outcome, event, successor or delay)"),
    ("aep/coordination/runs.py", "intent", "quota: intent (run_intent.lua: slots and POST intent)"),
    ("aep/coordination/runs.py", "unintent", "quota: intent (run_intent.lua: slots and POST intent)"),
    ("aep/coordination/runs.py", "claim", "ledger: job ownership (claim / owner)"),
    ("aep/coordination/runs.py", "owner", "ledger: job ownership (claim / owner)"),
    ("aep/coordination/runs.py", None, "ledger: other"),
    ("aep/coordination/quota.py", None, "quota: other"),
    ("aep/coordination/carriers.py", None, "delay: carriers (watchdog)"),
    ("aep/coordination/locks.py", None, "audience locks"),
    ("aep/coordination/durations.py", None, "durations: adaptive polls' summary"),
    ("aep/api/auth.py", None, "token (IMS cache)"),
    ("aep/coordination/metrics.py", None, "metrics"),
    ("tasks/metering.py", None, "metrics"),
    ("tasks/wakeups.py", None, "publish: next step's wake-up (broker)"),
    ("tasks/callbacks.py", None, "callbacks"),
)
CELERY = "celery: task events, broker, acks"
_ROOTS = tuple(f"/{p}" for p in ("aep/", "tasks/", "workers/", "config/"))

trips: Counter[str] = Counter()
commands: Counter[str] = Counter()
tasks = 0


def purpose(frame: Any) -> str:
    """The purpose of the Redis call made below ``frame`` (the innermost frame of ours decides)."""
    depth = 0
    while frame is not None and depth < 60:
        filename = frame.f_code.co_filename
        if "/site-packages/" not in filename and any(root in filename for root in _ROOTS):
            for suffix, function, name in PURPOSES:
                if filename.endswith(suffix) and (function is None or frame.f_code.co_name == function):
                    return name
            if "/tasks/" in filename or "/aep/" in filename:
                return f"other: {filename.rsplit('/', 2)[-2]}/{filename.rsplit('/', 1)[-1]}"
        frame = frame.f_back
        depth += 1
    return CELERY


_execute_command = redis.Redis.execute_command
_pipeline_execute = redis.client.Pipeline.execute


def _counted_command(self: Any, *args: Any, **options: Any) -> Any:
    name = purpose(sys._getframe(1))
    trips[name] += 1
    commands[name] += 1
    return _execute_command(self, *args, **options)


def _counted_pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
    name = purpose(sys._getframe(1))
    stack = len(self.command_stack)
    if stack:
        trips[name] += 1
        commands[name] += stack + (2 if self.transaction else 0)  # MULTI and EXEC
    return _pipeline_execute(self, *args, **kwargs)


def _dump(**_: Any) -> None:
    global tasks
    tasks += 1
    if _DIR:
        path = Path(_DIR) / f"child-{os.getpid()}.json"
        path.write_text(json.dumps({"tasks": tasks, "trips": trips, "commands": commands}), encoding="utf-8")


def _install(**_: Any) -> None:
    trips.clear()
    commands.clear()
    redis.Redis.execute_command = _counted_command  # type: ignore[method-assign]
    redis.client.Pipeline.execute = _counted_pipeline  # type: ignore[method-assign]


if _DIR:
    signals.worker_process_init.connect(_install, weak=False)
    signals.task_postrun.connect(_dump, weak=False)

"""The worker app of the fault-injection matrix: the real app, plus crash hooks armed through Redis.

``celery -A tests.chaos.crash_app worker`` runs the production code unchanged; this module installs a
hook at every named crash point (tasks/crashpoints.py) and adds two more by wrapping third-party code:
``post-sent`` (the client's transport returned a POST's answer, which is not read yet) and ``brpop`` (kombu's
Redis transport popped a message and has not recorded it as unacked yet: the message is lost if the
process dies here).

A test arms one point with ``HSET {prefix}crash:arm "{point}:{step}" {mode}`` (``*`` for any step); the
first execution that reaches it takes the arming (HDEL) and acts once:

    child   SIGKILL the process that reached the point (a pool child, or the main process for brpop)
    main    SIGKILL the worker's main process (a pool child then finishes its task, orphaned)
    term    SIGTERM the main process: a warm shutdown, as every deploy does
    soft    raise SoftTimeLimitExceeded here (the soft time limit struck in the bookkeeping)
    hold:P  block until the test writes to the FIFO at path P (it restarts Redis meanwhile)

Each firing is recorded in ``{prefix}crash:fired`` (JSON: point, step, run id, mode, time, pid).
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any
from urllib.parse import urlsplit

import kombu.transport.redis
from billiard.exceptions import SoftTimeLimitExceeded

from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.paths import POSTS
from aep_activator.tasks import crashpoints
from aep_activator.tasks.celery import app
from aep_activator.tasks.runtime import runtime

__all__ = ["app"]

MAIN_PID = os.getpid()  # imported by celery's main process, before it forks the pool


def _take(point: str, step: str) -> str | None:
    rt = runtime()
    key = rt.keys.prefix + "crash:arm"
    for field in (f"{point}:{step}", f"{point}:*"):
        mode = rt.redis.hget(key, field)
        if mode is not None and rt.redis.hdel(key, field):
            return mode.decode()
    return None


def hook(point: str, run_id: str, step: str) -> None:
    mode = _take(point, step)
    if mode is None:
        return
    rt = runtime()
    fired = {"point": point, "step": step, "run_id": run_id, "mode": mode, "t": time.time(), "pid": os.getpid()}
    rt.redis.rpush(rt.keys.prefix + "crash:fired", json.dumps(fired))
    in_main = os.getpid() == MAIN_PID
    if mode == "child" or (mode == "main" and in_main):
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "main":
        os.kill(os.getppid(), signal.SIGKILL)
    elif mode == "term":
        os.kill(os.getpid() if in_main else os.getppid(), signal.SIGTERM)
    elif mode == "soft":
        raise SoftTimeLimitExceeded()
    elif mode.startswith("hold:"):
        with open(mode.removeprefix("hold:")) as fifo:  # blocks until the test writes
            fifo.read()


crashpoints.install(hook)

_send = AEPClient._send


def _send_then_crash(self: AEPClient, method: str, target: str, body: Any, headers: dict[str, str]) -> Any:
    response = _send(self, method, target, body, headers)
    path = urlsplit(target).path.rstrip("/")
    if method == "POST" and path.endswith(tuple(POSTS)):
        run_id, _, rest = headers.get("x-request-id", "").partition(".")
        hook("post-sent", run_id, rest.split(".", 1)[0])
    return response


AEPClient._send = _send_then_crash  # type: ignore[method-assign]

_append = kombu.transport.redis.QoS.append


def _brpop_then_crash(self: Any, message: Any, delivery_tag: Any) -> Any:
    task_id = str((message.headers or {}).get("id", ""))
    run_id, _, rest = task_id.partition(".")
    hook("brpop", run_id, rest.split(".", 1)[0])
    return _append(self, message, delivery_tag)


kombu.transport.redis.QoS.append = _brpop_then_crash

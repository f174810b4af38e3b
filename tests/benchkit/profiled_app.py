"""Our Celery app with cProfile in every pool child, for finding where a step's CPU goes.

``BENCH_PROFILE_DIR=/tmp/prof celery -A tests.benchkit.profiled_app worker …`` runs ``workers.app``
unchanged (``tests/benchkit/procs.start_worker(stack, app="tests.benchkit.profiled_app",
env={"BENCH_PROFILE_DIR": …})`` starts one as the bench starts its workers). Each pool child profiles
itself from its start until its shutdown and dumps ``<dir>/child-<pid>.prof``, and the main process
(consumer, events, watchdog) dumps ``main-<pid>.prof``; read them with ``pstats``. For investigation
only: cProfile multiplies a step's CPU about five times, and the figures in BENCHMARKS.md come from
unprofiled workers."""

from __future__ import annotations

import cProfile
import os
import time
from pathlib import Path
from typing import Any

from celery import signals

from aep_activator.workers import app

__all__ = ["app"]

_DIR = os.environ.get("BENCH_PROFILE_DIR")
_profiler: cProfile.Profile | None = None


def _start(**_: Any) -> None:
    global _profiler
    # CPU time, not wall: on this shared machine a wall clock charges other processes' turns to ours.
    _profiler = cProfile.Profile(time.process_time)
    _profiler.enable()


def _dump(kind: str) -> None:
    if _profiler is not None and _DIR:
        _profiler.disable()
        _profiler.dump_stats(Path(_DIR) / f"{kind}-{os.getpid()}.prof")


if _DIR:
    signals.worker_process_init.connect(_start, weak=False)
    signals.worker_process_shutdown.connect(lambda **_: _dump("child"), weak=False)
    signals.worker_init.connect(_start, weak=False)
    signals.worker_shutdown.connect(lambda **_: _dump("main"), weak=False)

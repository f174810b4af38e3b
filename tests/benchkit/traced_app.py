"""Our Celery app with ``tracemalloc`` in every pool child: for investigating memory growth only.

``celery -A tests.benchkit.traced_app worker`` runs ``workers.app`` unchanged. When
``BENCH_TRACE_DIR`` is set, each pool child starts ``tracemalloc`` (``BENCH_TRACE_FRAMES`` frames) and

- every 100 tasks appends ``<tasks> rss <MB> traced <MB>`` to ``<dir>/child-<pid>.log``;
- after ``BENCH_TRACE_FROM`` tasks takes a baseline snapshot and, every ``BENCH_TRACE_EVERY`` tasks
  after it, writes ``<dir>/child-<pid>-<tasks>.txt``: the allocations grown since, by traceback;
- at each task count in ``BENCH_TRACE_GC_AT`` (comma-separated) writes ``<dir>/gc-<pid>-<tasks>.txt``:
  what the cyclic collector frees at that moment, counted by type.

This is how the ExceptionInfo cycle of every wait was found (``tasks/steps.py``). Tracing slows a
child several times and inflates its RSS; the figures in BENCHMARKS.md come from untraced workers.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

from celery import signals

from aep_activator.workers import app

__all__ = ["app"]

_DIR = os.environ.get("BENCH_TRACE_DIR")
_FRAMES = int(os.environ.get("BENCH_TRACE_FRAMES", "12"))
_FROM = int(os.environ.get("BENCH_TRACE_FROM", "200"))
_EVERY = int(os.environ.get("BENCH_TRACE_EVERY", "1000"))
_GC_AT = {int(x) for x in os.environ.get("BENCH_TRACE_GC_AT", "").split(",") if x}
_state: dict[str, Any] = {"n": 0, "base": None}


def _garbage(n: int) -> None:
    """What the cyclic collector would free now: counts by type, and the referrers of the commonest."""
    import collections
    import gc

    gc.set_debug(gc.DEBUG_SAVEALL)
    found = gc.collect()
    gc.set_debug(0)
    kinds = collections.Counter(type(o).__qualname__ for o in gc.garbage)
    lines = [f"tasks {n}: {found} unreachable objects in cycles"]
    lines += [f"{count:8d} {kind}" for kind, count in kinds.most_common(30)]
    for o in gc.garbage:
        if isinstance(o, BaseException):
            lines.append(f"exception {type(o).__qualname__}: {str(o)[:120]!r}")
            if len(lines) > 60:
                break
    gc.garbage.clear()
    Path(_DIR or ".", f"gc-{os.getpid()}-{n}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _start(**_: Any) -> None:
    tracemalloc.start(_FRAMES)


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _after_task(**_: Any) -> None:
    _state["n"] += 1
    n = _state["n"]
    if n % 100 == 0 and _DIR:
        traced, _peak = tracemalloc.get_traced_memory()
        with Path(_DIR, f"child-{os.getpid()}.log").open("a", encoding="utf-8") as f:
            f.write(f"{n} rss {_rss_mb():.1f} traced {traced / 2**20:.1f}\n")
    if n in _GC_AT and _DIR:
        _garbage(n)
    if n == _FROM:
        _state["base"] = tracemalloc.take_snapshot()
        _state["base_rss"] = _rss_mb()
    elif _state["base"] is not None and (n - _FROM) % _EVERY == 0 and _DIR:
        snap = tracemalloc.take_snapshot()
        stats = snap.compare_to(_state["base"], "traceback")
        traced, peak = tracemalloc.get_traced_memory()
        lines = [f"tasks {n}, rss {_rss_mb():.1f} MB (at {_FROM}: {_state['base_rss']:.1f}), "
                 f"traced {traced / 2**20:.1f} MB, peak {peak / 2**20:.1f} MB"]  # fmt: skip
        total = sum(s.size_diff for s in stats)
        lines.append(f"total traced growth since task {_FROM}: {total / 2**20:.2f} MB")
        for stat in stats[:25]:
            lines.append(f"\n{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks")
            lines += ["    " + line for line in stat.traceback.format()]
        Path(_DIR, f"child-{os.getpid()}-{n}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if _DIR:
    signals.worker_process_init.connect(_start, weak=False)
    signals.task_postrun.connect(_after_task, weak=False)

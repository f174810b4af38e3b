"""Runs in flight at scale: ``python -m tests.bench_scale`` (``make bench-scale``) writes ``BENCHMARKS-scale.md``.

``make bench`` measures 10,000 waiting runs; this measures the same stage (``bench_inflight`` of
``tests/bench.py``: one worker, ``--concurrency=2``, a private ``redis-server``) at 10,000 and then at
100,000 runs in flight in one run, each followed by a bare Celery worker's RSS after as many tasks, so
the report can say whether memory stays flat as runs pile up. About half an hour on 2 cores: run it in the
background. It writes its own file, with its date; ``make bench`` never touches it and quotes its
figures (with that date) in its own target table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from aep_activator.devstack.embedded_redis import provision
from tests import bench
from tests.benchkit.report import SCALE_FIGURES, _inflight, _machine, scale_targets

OUTPUT = bench.SCALE_REPORT
SIZES = (10_000, 100_000)


def figures(results: dict[int, dict[str, Any]], started_at: str) -> dict[str, Any]:
    """What ``make bench`` quotes: RSS per size, the bare worker's, Redis KB per waiting run."""
    return {
        "started_at": started_at,
        "sizes": {
            str(n): {"rss_total_mb": r["rss_total_mb"], "bare_rss_total_mb": r["bare"]["rss_total_mb"],
                     "tasks": r["tasks"], "redis_kb_per_run": 1024 * r["redis_used_delta_mb"] / r["runs"]}
            for n, r in results.items()
        },
    }  # fmt: skip


def render(results: dict[int, dict[str, Any]], meta: dict[str, Any]) -> str:
    fig = figures(results, meta["started"])
    out = [
        "# Benchmarks at scale\n",
        f"Written by `python -m tests.bench_scale` (`make bench-scale`) in one run started {meta['started']}, which "
        f"took {meta['elapsed_s']:.0f} s; `make bench` (BENCHMARKS.md) leaves this file alone and quotes its targets. "
        "Each size is `make bench`'s stage 2 (`bench_inflight` in `tests/bench.py`) with a fresh worker; the "
        "simulator is slowed in proportion to the size, so that no run re-polls before every run waits.\n",
        _machine(meta),
        "## Targets (issue 13, \"Done when\")\n",
        "| Figure | Measured | Target | Met |",
        "|---|---|---|---|",
    ]
    out += [t.row() for t in scale_targets(fig)]
    out.append("")
    for n, r in results.items():
        out.append(_inflight(r, title=f"{n:,} runs in flight"))
    out.append(SCALE_FIGURES + json.dumps(fig, sort_keys=True) + " -->")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="N",
                        help="runs in flight, smallest first (default: 10,000 100,000)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=OUTPUT, help="report path (default: BENCHMARKS-scale.md)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes: every size must be at least 1")
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    server = provision(None, db=15)
    bench.say(server.describe())
    results: dict[int, dict[str, Any]] = {}
    loads: dict[str, tuple[float, float, float]] = {}
    try:
        with redis.Redis.from_url(server.url) as client:
            host = bench.machine(client)
        for n in sorted(args.sizes):
            bench.say(f"{n:,} runs in flight (load average {os.getloadavg()[0]:.2f})")
            results[n] = bench.bench_inflight(server.url, replace(bench.FULL, inflight=n))
            loads[f"{n:,} runs"] = os.getloadavg()
    finally:
        server.stop()
    meta = {"started": started_at, "elapsed_s": time.monotonic() - started, "host": host, "loads": loads,
            "redis": server.describe()}  # fmt: skip
    text = render(results, meta)
    print(text)
    args.output.write_text(text, encoding="utf-8")
    bench.say(f"wrote {args.output} ({meta['elapsed_s']:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

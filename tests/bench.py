"""The aep-activator benchmark: ``python -m tests.bench`` (``make bench``) writes ``BENCHMARKS.md``.

Four figures, measured in one run against one Redis (a private ``redis-server`` by default, so the
machine's shared Redis neither disturbs nor is disturbed by the figures; ``--redis-url`` to choose):

1. **Overhead ratio**: completed chains/s through our full v1 chain (simulator at infinite speed, so
   every poll succeeds at once) versus a bare Celery chain of five no-op tasks with the same worker
   configuration (``tests/benchkit/noop.py``). Target >= 0.5.
2. **In-flight scale**: 10,000 runs waiting on segment jobs that outlast the measurement, one worker
   process: worker RSS, Redis memory, tasks the worker holds (reserved/scheduled/unacked), delay queue
   size. Target: worker RSS < 300 MB.
3. **AEP calls per run** by step, and the **detection delay** (AEP job end -> next step start) as a
   share of the job's duration, at the default poll settings divided by the simulator speed.
   Target <= 10 %.
4. **Enqueue latency** of ``start_activation(on_quota="fail")`` p50/p99. Target p99 < 10 ms.

``--quick`` runs every stage at a small size (well under a minute) and writes no report unless
``--output`` is given: a smoke test. Every stage stops its workers and simulator and deletes its keys
(and the Celery results of its tasks), whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celery
import kombu
import redis

from aep_activator.aepsim.config import Durations, Guardrails, SimulatorConfig
from aep_activator.devstack.embedded_redis import provision
from aep_activator.devstack.stack import REPO_ROOT, Stack
from aep_activator.tasks import runtime
from aep_activator.tasks.celery import configure
from aep_activator.tasks.producer import start_activation
from aep_activator.tasks.runtime import token_provider
from aep_activator.workers import app
from tests.benchkit import procs
from tests.benchkit.fixture import request, write_fixture
from tests.benchkit.noop import create_noop_app, send_noop_chain
from tests.benchkit.report import render
from tests.benchkit.results import RESULT_PREFIX, delete_results, wait_results

SEED = 20261128
UNLIMITED = 10**9
# Our own quota ledger must not block the bench: the point is throughput, not the daily guardrails.
NO_QUOTAS = {"QUOTA_SEGMENT_JOBS_PER_DAY": str(UNLIMITED), "QUOTA_ADHOC_PER_DAY": str(UNLIMITED)}
SIM_NO_GUARDRAILS = Guardrails(adhoc_jobs_per_day_per_org=UNLIMITED, segment_jobs_per_day_per_sandbox=UNLIMITED)


@dataclass(frozen=True)
class Sizes:
    """How big each stage is. ``FULL`` fits ``make bench`` in about 8 minutes on 2 cores."""

    name: str
    chains: int  # chains per overhead repetition
    reps: int  # overhead repetitions per variant
    warmup: int
    concurrency: int  # pool processes of every worker
    inflight: int  # runs in flight for stage 2
    realistic_runs: int  # runs for stage 3
    realistic_speed: float
    enqueue_calls: int  # stage 4


FULL = Sizes("full", chains=200, reps=3, warmup=20, concurrency=2, inflight=10_000, realistic_runs=20,
             realistic_speed=25.0, enqueue_calls=2_000)  # fmt: skip
QUICK = Sizes("quick", chains=20, reps=1, warmup=3, concurrency=2, inflight=200, realistic_runs=3,
              realistic_speed=600.0, enqueue_calls=200)  # fmt: skip


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in [0, 100]."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------------------------------
# Stacks


@contextlib.contextmanager
def bench_stack(redis_url: str, sim: SimulatorConfig, env: dict[str, str]) -> Iterator[Stack]:
    """A stack (simulator + unique prefix/queue) that this process produces to; always torn down."""
    stack = Stack.start(redis_url, sim_config=sim, env=env, prefix_root="aep-bench")
    extra_results: list[str] = []
    stack.bench_results = extra_results  # type: ignore[attr-defined]  # task ids not in any run's chain
    try:
        configure(stack.settings())
        yield stack
    finally:
        with contextlib.suppress(Exception):
            for proc in stack.workers:
                stack.stop_worker(proc)
        with contextlib.suppress(Exception), redis.Redis.from_url(redis_url) as client:
            delete_results(client, our_task_ids(client, stack.prefix) + extra_results)
        stack.stop()
        runtime.configure(None)


def our_task_ids(client: redis.Redis, prefix: str) -> list[str]:
    """Every task id of every run under ``prefix`` (the ``chain`` field of each run record)."""
    keys = [k for k in client.scan_iter(match=f"{prefix}run:*", count=1000) if not k.endswith(b":timeline")]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "chain")
    return [task_id for raw in pipe.execute() if raw for task_id in json.loads(raw)]


def fixture_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="aep-bench-"))


# --------------------------------------------------------------------------------------------------
# 1. Overhead ratio


@dataclass
class Throughput:
    label: str
    chains: int
    reps: list[float] = field(default_factory=list)  # chains/s per repetition
    tasks_per_chain: int = 6

    @property
    def median(self) -> float:
        return median(self.reps)


def measure_chains(client: redis.Redis, n: int, send: Callable[[int], str], timeout_s: float) -> float:
    """Enqueue ``n`` chains back to back; chains/s from the first enqueue to the last chain's end."""
    t0 = time.time()
    last_ids = [send(i) for i in range(n)]
    ends = wait_results(client, last_ids, timeout_s)
    return n / (max(ends) - t0)


def bench_overhead(redis_url: str, sizes: Sizes, profile_dir: Path | None = None) -> dict[str, Any]:
    profile_app = "tests.benchkit.profiled_app" if profile_dir else None
    fixture = write_fixture(fixture_dir())
    sim = SimulatorConfig(speed=1e9, seed=SEED, guardrails=SIM_NO_GUARDRAILS, fixture_path=str(fixture))
    ours = Throughput("our v1 chain (6 tasks)", sizes.chains, tasks_per_chain=6)
    bare = Throughput("bare Celery chain (5 no-op tasks)", sizes.chains, tasks_per_chain=5)
    with bench_stack(redis_url, sim, {**NO_QUOTAS}) as stack, redis.Redis.from_url(redis_url) as client:
        ledger = runtime.runtime().ledger

        def send_ours(i: int) -> str:
            run_id = start_activation(request(i))
            last: str = json.loads(ledger.field(run_id, "chain") or "[]")[-1]
            return last

        bare_queue = stack.queue + "-bare"
        noop_app = create_noop_app(stack.settings().model_copy(update={"aep_queue": bare_queue}))
        counter = iter(range(10**9))

        def send_bare(i: int) -> str:
            last = send_noop_chain(noop_app, f"bare-{next(counter)}")
            stack.bench_results.append(last)  # type: ignore[attr-defined]
            return last

        # Both workers stay up and the repetitions alternate, so a slow patch on this shared machine
        # hits both variants alike. The idle one costs little (ours: one delay-pump Lua call per tick).
        variants: list[tuple[Throughput, str, str, Callable[[int], str]]] = [
            (bare, "tests.benchkit.noop_app", bare_queue, send_bare),
            (ours, profile_app or "aep_activator.workers", stack.queue, send_ours),
        ]
        workers: dict[str, int] = {}
        for result, app_module, queue, send in variants:
            name = "bare" if result is bare else "ours"
            env = {"BENCH_PROFILE_DIR": str(profile_dir)} if profile_dir and result is ours else None
            proc, log = procs.start_worker(
                stack, app=app_module, queue=queue, name=name, concurrency=sizes.concurrency, env=env
            )
            procs.wait_ready(proc, log, sizes.concurrency)
            measure_chains(client, sizes.warmup, send, timeout_s=60)
            workers[name] = proc.pid
        # CPU seconds per variant: the worker (main + pool), this process (producer, and the simulator
        # thread for ours), and Redis (only meaningful on a private server).
        # Redis commands: every command the server ran meanwhile (exact on a private server only).
        parts = ("worker", "bench process", "redis", "redis commands")
        cpu = {name: dict.fromkeys(parts, 0.0) for name in workers}
        for rep in range(sizes.reps):
            for result, _, _, send in variants:
                name = "bare" if result is bare else "ours"
                before = (worker_cpu(workers[name]), time.process_time(), redis_cpu(client), redis_calls(client))
                rate = measure_chains(client, sizes.chains, send, timeout_s=300)
                after = (worker_cpu(workers[name]), time.process_time(), redis_cpu(client), redis_calls(client))
                for part, b, a in zip(cpu[name], before, after, strict=True):
                    cpu[name][part] += a - b
                result.reps.append(rate)
                say(f"overhead: {name:4} rep {rep + 1}/{sizes.reps}: {rate:6.1f} chains/s")
        per_chain = {name: {p: v / (sizes.chains * sizes.reps) for p, v in c.items()} for name, c in cpu.items()}
    return {
        "ours": ours,
        "bare": bare,
        "ratio": ours.median / bare.median,
        "per_chain": per_chain,
    }


def redis_calls(client: redis.Redis) -> float:
    return float(sum(v["calls"] for v in client.info("commandstats").values()))


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def worker_cpu(pid: int) -> float:
    """CPU seconds of a worker's main process and pool children."""
    return procs.cpu_s(pid) + sum(procs.cpu_s(c) for c in procs.children(pid))


# --------------------------------------------------------------------------------------------------
# 2. In-flight scale

# Segment jobs that outlast the measurement (a day, at speed 1), and a first poll interval longer than
# the measurement, so after create + first poll every run waits in the delay queue until we are done.
INFLIGHT_POLL_S = "3600"


def bench_inflight(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    fixture = write_fixture(fixture_dir())
    sim = SimulatorConfig(
        speed=1.0,
        seed=SEED,
        guardrails=SIM_NO_GUARDRAILS,
        durations=Durations(segment_job_total_s=86_400.0),
        fixture_path=str(fixture),
    )
    env = {**NO_QUOTAS, "POLL_SEGMENT_INITIAL_S": INFLIGHT_POLL_S, "POLL_SEGMENT_CAP_S": INFLIGHT_POLL_S}
    n = sizes.inflight
    with bench_stack(redis_url, sim, env) as stack, redis.Redis.from_url(redis_url) as client:
        rt = runtime.runtime()
        proc, log = procs.start_worker(stack, name="inflight", concurrency=sizes.concurrency)
        procs.wait_ready(proc, log, sizes.concurrency)
        # One warm-up run, so the baseline below includes a worker that has built its clients.
        start_activation(request(0, started_by="bench-warmup"))
        wait_until(lambda: rt.delays.pending() == 1, timeout_s=60, what="the warm-up run to wait")
        idle_main, idle_children = procs.tree_rss_mb(proc.pid)
        mem_before = int(client.info("memory")["used_memory"])
        keys_before = int(client.dbsize())
        peak = idle_main + sum(idle_children)

        say(f"in-flight: enqueueing {n:,} runs")
        t0 = time.monotonic()
        for i in range(1, n + 1):
            start_activation(request(i))
        t_enqueued = time.monotonic() - t0
        say(f"in-flight: enqueued in {t_enqueued:.1f}s; waiting until all {n + 1:,} runs wait on AEP")

        def all_waiting() -> bool:
            nonlocal peak
            main, kids = procs.tree_rss_mb(proc.pid)
            peak = max(peak, main + sum(kids))
            return rt.delays.pending() >= n + 1 and client.llen(stack.queue) == 0

        wait_until(all_waiting, timeout_s=900, what="every run to wait", progress=lambda: rt.delays.pending())
        t_waiting = time.monotonic() - t0
        time.sleep(2)  # let the last acks and result writes land
        main, kids = procs.tree_rss_mb(proc.pid)
        pss = procs.tree_pss_mb(proc.pid)
        held = worker_holdings(stack, client)
        mem_after = int(client.info("memory")["used_memory"])
        keys_after = int(client.dbsize())
        breakdown = key_memory(client, stack.prefix)
        statuses = run_statuses(client, stack.prefix)
        delay_size = rt.delays.pending()
        stack.stop_worker(proc)
    return {
        "runs": n,
        "concurrency": sizes.concurrency,
        "enqueue_s": t_enqueued,
        "all_waiting_s": t_waiting,
        "rss_idle_mb": idle_main + sum(idle_children),
        "rss_main_mb": main,
        "rss_children_mb": kids,
        "rss_total_mb": main + sum(kids),
        "rss_peak_mb": peak,
        "pss_total_mb": pss,
        "redis_used_delta_mb": (mem_after - mem_before) / 2**20,
        "redis_keys_delta": keys_after - keys_before,
        "key_memory": breakdown,
        "held": held,
        "delay_queue": delay_size,
        "statuses": statuses,
    }


def wait_until(
    condition: Callable[[], bool], *, timeout_s: float, what: str, progress: Callable[[], Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    last_report = time.monotonic()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        if progress is not None and time.monotonic() - last_report > 15:
            say(f"  ... {progress():,}")
            last_report = time.monotonic()
        time.sleep(0.5)


def worker_holdings(stack: Stack, client: redis.Redis) -> dict[str, int]:
    """What the worker holds: reserved/scheduled (ETA)/active per ``celery inspect``, and unacked messages."""
    inspect = app.control.inspect(timeout=3.0)
    out: dict[str, int] = {}
    for kind in ("reserved", "scheduled", "active"):
        replies = getattr(inspect, kind)() or {}
        mine = {host: tasks for host, tasks in replies.items() if stack.prefix.rstrip(":") in host}
        out[kind] = sum(len(tasks) for tasks in mine.values()) if mine else -1
    # kombu's Redis transport keeps every delivered, unacknowledged message in one hash for all queues:
    # field = delivery tag, value = JSON [message, exchange, routing key].
    unacked = 0
    for _, raw in client.hscan_iter("unacked", count=1000):
        with contextlib.suppress(ValueError, IndexError):
            unacked += json.loads(raw)[2] == stack.queue
    out["unacked"] = unacked
    out["queued"] = int(client.llen(stack.queue))
    return out


def key_memory(client: redis.Redis, prefix: str) -> dict[str, dict[str, float]]:
    """``MEMORY USAGE`` summed by kind of key: run records, timelines, delay queue, Celery results, other."""
    groups: dict[str, list[bytes]] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        name = key.decode()[len(prefix) :]
        if name.startswith("run:"):
            kind = "run timelines (LIST)" if name.endswith(":timeline") else "run records (HASH)"
        elif name.startswith("delay:"):
            kind = f"delay queue ({name})"
        else:
            kind = "other ledger keys"
        groups.setdefault(kind, []).append(key)
    ids = our_task_ids(client, prefix)
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.exists(RESULT_PREFIX + task_id)
    groups["Celery results"] = [
        (RESULT_PREFIX + t).encode() for t, exists in zip(ids, pipe.execute(), strict=True) if exists
    ]
    out: dict[str, dict[str, float]] = {}
    for kind, keys in groups.items():
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        total = sum(x or 0 for x in pipe.execute())
        out[kind] = {"keys": len(keys), "mb": total / 2**20}
    return out


def run_statuses(client: redis.Redis, prefix: str) -> dict[str, int]:
    keys = [k for k in client.scan_iter(match=f"{prefix}run:*", count=1000) if not k.endswith(b":timeline")]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "status", "step")
    counts: dict[str, int] = {}
    for status, step in pipe.execute():
        label = f"{(status or b'?').decode()} at {(step or b'?').decode()}"
        counts[label] = counts.get(label, 0) + 1
    return counts


# --------------------------------------------------------------------------------------------------
# 3. AEP calls per run, and detection delay

STEP_OF_ROUTE = {
    "POST /ims/token/v3": "(IMS token)",
    "POST /data/core/ups/segment/jobs": "create_segment_job",
    "GET /data/core/ups/segment/jobs/{id}": "poll_segment_job",
    "POST /data/core/ups/export/jobs": "create_export_job",
    "GET /data/core/ups/export/jobs/{id}": "poll_export_job",
    "POST /data/core/activation/disflowprovider/adhocrun": "run_activation",
    "GET /data/foundation/flowservice/runs/{id}": "poll_activation",
}
# Defaults of config/settings.py, in real-AEP seconds; the bench divides them by the simulator speed.
DEFAULT_POLLS = {
    "POLL_SEGMENT_INITIAL_S": 30.0,
    "POLL_SEGMENT_CAP_S": 300.0,
    "POLL_SEGMENT_DEADLINE_S": 18_000.0,
    "POLL_EXPORT_INITIAL_S": 15.0,
    "POLL_EXPORT_CAP_S": 120.0,
    "POLL_EXPORT_DEADLINE_S": 10_800.0,
    "POLL_ACTIVATION_INITIAL_S": 15.0,
    "POLL_ACTIVATION_CAP_S": 120.0,
    "POLL_ACTIVATION_DEADLINE_S": 21_600.0,
    "RETRY_INITIAL_S": 2.0,
    "RETRY_CAP_S": 300.0,
    "DELAY_PUMP_INTERVAL_S": 1.0,
}


def scaled_polls(speed: float) -> dict[str, str]:
    env = {name: repr(value / speed) for name, value in DEFAULT_POLLS.items()}
    env["POLL_FACTOR"] = "1.5"
    env["POLL_JITTER"] = "0.2"
    return env


@dataclass
class JobDelay:
    kind: str
    duration_s: list[float] = field(default_factory=list)  # simulated job length (real-AEP s / speed)
    detect_s: list[float] = field(default_factory=list)  # job end -> poll saw it ("succeeded" event)
    next_s: list[float] = field(default_factory=list)  # job end -> next step started (or run succeeded)

    def share(self, values: list[float]) -> list[float]:
        return [v / d for v, d in zip(values, self.duration_s, strict=True)]


def bench_calls(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    fixture = write_fixture(fixture_dir())
    speed = sizes.realistic_speed
    sim = SimulatorConfig(speed=speed, seed=SEED, guardrails=SIM_NO_GUARDRAILS, fixture_path=str(fixture))
    n = sizes.realistic_runs
    with bench_stack(redis_url, sim, {**NO_QUOTAS, **scaled_polls(speed)}) as stack:
        rt = runtime.runtime()
        proc, log = procs.start_worker(stack, name="calls", concurrency=sizes.concurrency)
        procs.wait_ready(proc, log, sizes.concurrency)
        # Steady state: the IMS token is already cached in Redis (else both pool children race for it
        # and one backs off, TokenRefreshBusy), and the journal starts empty.
        token_provider(rt.settings, rt.redis).token()
        stack.simulator.ctx.journal.clear()
        run_ids = [start_activation(request(i)) for i in range(n)]
        total_s = (780 + 300 + 180) / speed
        wait_until(
            lambda: all(r is not None and r.terminal for r in map(rt.ledger.get, run_ids)),
            timeout_s=60 + 5 * total_s,
            what="the realistic runs to finish",
        )
        runs = [rt.ledger.get(r) for r in run_ids]
        journal = stack.journal()
        state = stack.simulator.state
        stack.stop_worker(proc)
    failed = [(r.run_id, r.error) for r in runs if r is not None and r.status != "succeeded"]
    if failed:
        raise RuntimeError(f"realistic runs failed: {failed[:3]}")
    calls: dict[str, int] = {}
    for entry in journal:
        route = f"{entry['method']} {entry['template']}"
        calls[route] = calls.get(route, 0) + 1
    per_run = {route: count / n for route, count in sorted(calls.items())}
    segment = JobDelay("segment job")
    export = JobDelay("export job")
    activation = JobDelay("ad-hoc flow run")
    for run in runs:
        assert run is not None and run.segment_job_id and run.export_job_id
        t = timeline_times(run.timeline)
        job = state.segment_jobs[run.segment_job_id]
        add_delay(
            segment, job.created, job.ends_at, t["poll_segment_job", "succeeded"], t["create_export_job", "started"]
        )
        ejob = state.export_jobs[int(run.export_job_id)]
        add_delay(export, ejob.created, ejob.ends_at, t["poll_export_job", "succeeded"], t["run_activation", "started"])
        flows = [state.flow_runs[o["run_id"]] for o in run.flow_runs]
        created, ends = min(f.created for f in flows), max(f.ends_at for f in flows)
        done = t["poll_activation", "succeeded"]
        add_delay(activation, created, ends, done, done)
    return {
        "runs": n,
        "speed": speed,
        "env": scaled_polls(speed),
        "per_run": per_run,
        "steps": {route: STEP_OF_ROUTE.get(route, "?") for route in per_run},
        "delays": [segment, export, activation],
    }


def timeline_times(timeline: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """``(step, event) -> t`` of the first such event."""
    out: dict[tuple[str, str], float] = {}
    for event in timeline:
        out.setdefault((event["step"], event["event"]), float(event["t"]))
    return out


def add_delay(into: JobDelay, created: float, ends: float, detected: float, next_started: float) -> None:
    into.duration_s.append(ends - created)
    into.detect_s.append(detected - ends)
    into.next_s.append(next_started - ends)


# --------------------------------------------------------------------------------------------------
# 4. Enqueue latency


def bench_enqueue(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    """``start_activation(on_quota="fail")`` back to back, no worker running (nothing competes for CPU)."""
    fixture = write_fixture(fixture_dir())
    sim = SimulatorConfig(speed=1.0, seed=SEED, guardrails=SIM_NO_GUARDRAILS, fixture_path=str(fixture))
    with bench_stack(redis_url, sim, {**NO_QUOTAS}) as stack:
        for i in range(50):  # warm-up: connections, Lua script loads, pydantic caches
            start_activation(request(i, on_quota="fail"))
        latencies: list[float] = []
        for i in range(sizes.enqueue_calls):
            req = request(i, on_quota="fail")
            t0 = time.perf_counter()
            start_activation(req)
            latencies.append((time.perf_counter() - t0) * 1000)
        queued = int(runtime.runtime().redis.llen(stack.queue))
    return {
        "calls": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
        "mean_ms": statistics.fmean(latencies),
        "queued": queued,
    }


# --------------------------------------------------------------------------------------------------
# Entry point


def machine(client: redis.Redis) -> dict[str, str]:
    load1, load5, _ = os.getloadavg()
    return {
        "cores (nproc)": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
        "Python": platform.python_version(),
        "Redis": str(client.info("server")["redis_version"]),
        "Celery / kombu": f"{celery.__version__} / {kombu.__version__}",
        "redis-py": redis.__version__,
        "OS": platform.platform(),
        "load average at start (1 / 5 min)": f"{load1:.2f} / {load5:.2f}",
    }


STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "overhead": bench_overhead,
    "inflight": bench_inflight,
    "calls": bench_calls,
    "enqueue": bench_enqueue,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run (< 1 min); no report")
    parser.add_argument("--redis-url", help="use this Redis (database 15 advised) instead of a private server")
    parser.add_argument("--output", type=Path, help="report path (default: BENCHMARKS.md; none with --quick)")
    parser.add_argument("--only", choices=list(STAGES), action="append", help="run only this stage (repeatable)")
    parser.add_argument("--profile", type=Path, help="overhead stage: cProfile our worker into this directory")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    output = args.output or (None if args.quick else REPO_ROOT / "BENCHMARKS.md")
    random.seed(SEED)
    started = time.monotonic()
    server = provision(args.redis_url, db=15)
    say(server.describe())
    results: dict[str, Any] = {}
    try:
        with redis.Redis.from_url(server.url) as client:
            host = machine(client)
        say(f"sizes: {sizes}")
        for name, stage in STAGES.items():
            if args.only and name not in args.only:
                continue
            say(f"stage {name}")
            kwargs = {"profile_dir": args.profile} if name == "overhead" and args.profile else {}
            results[name] = stage(server.url, sizes, **kwargs)
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    text = render(results, sizes, host, server.describe(), elapsed, argv if argv is not None else sys.argv[1:])
    print(text)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        say(f"wrote {output} ({elapsed:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

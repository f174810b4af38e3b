"""The aep-activator benchmark: ``python -m tests.bench`` (``make bench``) writes ``BENCHMARKS.md`` from one run.

Every stage runs against one private ``redis-server`` (``--redis-url`` to choose another), with the
poll settings of ``config/settings.py`` scaled by the simulator's speed (``tests/benchkit/polls.py``;
no poll value is typed in here) and job durations drawn log-normal around the simulator's defaults
(sigma :data:`SIGMA`, seed :data:`SEED`):

1. ``overhead``: our v1 run (six steps, simulator at infinite speed) against a bare Celery chain of as
   many no-op tasks, alternating, :attr:`Sizes.reps` repetitions each: chains/s, worker CPU, Redis
   commands per chain, worker RSS after the same number of tasks; then a counted worker
   (``tests/benchkit/counted_app.py``) splits the Redis round trips of a step by purpose.
2. ``inflight``: :attr:`Sizes.inflight` runs waiting on AEP: Redis memory per waiting run, worker RSS,
   what the worker holds; a bare worker's RSS after as many tasks.
3. ``detection``: runs at the shipped poll schedule, in simulated time: detection delay per kind of
   job (median, p95, as a share of the job's duration), GETs per job, AEP calls per run.
4. ``enqueue``: ``start_activation(on_quota="fail")`` latency p50/p99.

``--quick`` runs every stage small (about a minute) and writes no report unless ``--output`` is given.
Every stage stops its workers and simulator and deletes its keys, whatever happens.
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
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
from aep_activator.tasks.producer import parse_request, start_activation
from aep_activator.tasks.runtime import token_provider
from aep_activator.workers import app
from tests.benchkit import polls, procs
from tests.benchkit.fixture import request, write_fixture
from tests.benchkit.noop import create_noop_app, send_noop_chain
from tests.benchkit.report import pct, read_scale_figures, render
from tests.benchkit.results import RESULT_PREFIX, delete_results, result_times

SEED = 20261201
SIGMA = 0.5  # issue 13: log-normal spread of every job's duration, on the log scale
UNLIMITED = 10**9
# Our own quota ledger must not block the bench: the point is the machinery, not the daily guardrails.
NO_QUOTAS = {
    "QUOTA_SEGMENT_JOBS_PER_DAY": str(UNLIMITED),
    "QUOTA_ADHOC_PER_DAY": str(UNLIMITED),
    "QUOTA_SEGMENT_JOBS_PER_YEAR_PRODUCTION": str(UNLIMITED),
    "QUOTA_SEGMENT_JOBS_PER_YEAR_DEVELOPMENT": str(UNLIMITED),
}
SIM_NO_GUARDRAILS = Guardrails(
    adhoc_jobs_per_day_per_org=UNLIMITED,
    segment_jobs_per_day_per_sandbox=UNLIMITED,
    segment_jobs_per_year_production=UNLIMITED,
    segment_jobs_per_year_development=UNLIMITED,
)
PRIVATE_REDIS = True  # main() clears it for --redis-url: the bench never changes a shared server's config
BACKGROUND_S = 3.0  # how long the overhead stage measures both idle workers' background commands
OVERHEAD_SPEED = 1e9  # every job is done by the first poll: the machinery alone
INFLIGHT_SPEED = 0.01  # AEP 100x slower at 10,000 runs: the first re-poll (30 s x 100) comes after the measurement
INFLIGHT_BASE = 10_000  # runs at INFLIGHT_SPEED; more runs take longer to all wait, so AEP is slowed further
SCALE_REPORT = REPO_ROOT / "BENCHMARKS-scale.md"  # make bench-scale writes it; make bench quotes its targets
INFLIGHT_S_PER_RUN = 0.1  # timeout per run in flight (10,000 took 228 s to all wait, 0.023 s per run)


def inflight_speed(runs: int) -> float:
    """The simulator speed at which no run re-polls before ``runs`` runs all wait: slower as runs grow."""
    return INFLIGHT_SPEED * min(1.0, INFLIGHT_BASE / max(1, runs))


@dataclass(frozen=True)
class Sizes:
    """How big each stage is. ``FULL`` fits ``make bench`` in about 12 minutes on 2 shared cores."""

    name: str
    chains: int  # chains per overhead repetition
    reps: int  # overhead repetitions per variant (7 in FULL: one slow patch of this shared machine moves a median of 3)
    warmup: int
    concurrency: int  # pool processes of every worker
    counted_chains: int  # runs through the counted worker (round trips by purpose)
    inflight: int  # runs waiting on AEP in stage 2
    detect_warmup: int  # runs of stage 3 that warm the duration summary, not measured
    detect_runs: int  # runs of stage 3
    detect_speed: float
    enqueue_calls: int  # stage 4


FULL = Sizes("full", chains=120, reps=7, warmup=20, concurrency=2, counted_chains=40, inflight=10_000,
             detect_warmup=10, detect_runs=160, detect_speed=12.5, enqueue_calls=2_000)  # fmt: skip
QUICK = Sizes("quick", chains=20, reps=3, warmup=3, concurrency=2, counted_chains=5, inflight=200,
              detect_warmup=8, detect_runs=4, detect_speed=600.0, enqueue_calls=200)  # fmt: skip


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def simulator(speed: float, fixture: Path) -> SimulatorConfig:
    durations = Durations(sigma=SIGMA)
    return SimulatorConfig(speed=speed, seed=SEED, guardrails=SIM_NO_GUARDRAILS, durations=durations,
                           fixture_path=str(fixture))  # fmt: skip


@contextlib.contextmanager
def bench_stack(redis_url: str, speed: float, watchdog_speed: float | None = None) -> Iterator[Stack]:
    """A stack (simulator + unique prefix/queue) at ``speed`` whose polls are the shipped ones scaled."""
    fixture = write_fixture(Path(tempfile.mkdtemp(prefix="aep-bench-")))
    env = {**NO_QUOTAS, **polls.env(speed, watchdog_speed)}
    stack = Stack.start(redis_url, sim_config=simulator(speed, fixture), env=env, prefix_root="aep-bench")
    results: list[str] = []
    stack.bench_results = results  # type: ignore[attr-defined]  # Celery results of the bare chains
    try:
        configure(stack.settings())
        yield stack
    finally:
        with contextlib.suppress(Exception):
            for proc in list(stack.workers):
                stack.stop_worker(proc)
        with contextlib.suppress(Exception), redis.Redis.from_url(redis_url) as client:
            delete_results(client, results)
            for key in client.scan_iter(match=f"*{stack.queue}*", count=1000):
                client.delete(key)
        stack.stop()
        runtime.configure(None)


def steps_per_run() -> int:
    return len(runtime.runtime().plan.steps_for(parse_request(request(0))))


class Commands:
    """Redis commands the server ran (``INFO commandstats``), less those this bench sent to watch."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.own = 0  # commands of the bench's own completion polling (and these INFO calls)

    def total(self) -> float:
        return float(sum(self.by_command().values()))

    def by_command(self) -> dict[str, int]:
        """``command -> calls`` so far (``cmdstat_hset`` -> ``hset``); Lua-internal calls included."""
        self.own += 1
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in self.client.info("commandstats").items()}


def wait_runs(client: redis.Redis, stack: Stack, run_ids: list[str], timeout_s: float, cmds: Commands) -> list[float]:
    """Until every run has succeeded; returns each one's end (``updated_at`` of its record)."""
    prefix = stack.prefix
    ends: dict[str, float] = {}
    pending = list(run_ids)
    deadline = time.monotonic() + timeout_s
    while pending:
        pipe = client.pipeline(transaction=False)
        for run_id in pending:
            pipe.hmget(f"{prefix}run:{run_id}", "status", "updated_at")
        cmds.own += len(pending)
        still = []
        for run_id, (status, updated) in zip(pending, pipe.execute(), strict=True):
            if status == b"succeeded":
                ends[run_id] = float(updated)
            elif status in (b"failed", b"cancelled"):
                raise RuntimeError(f"run {run_id} ended {status.decode()}")
            else:
                still.append(run_id)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(run_ids)} runs not done after {timeout_s:.0f}s")
            time.sleep(0.25)
    return [ends[r] for r in run_ids]


def wait_bare(client: redis.Redis, last_ids: list[str], timeout_s: float, cmds: Commands) -> list[float]:
    done: dict[str, float] = {}
    pending = list(last_ids)
    deadline = time.monotonic() + timeout_s
    while pending:
        cmds.own += len(pending)
        got = result_times(client, pending)
        done.update(got)
        pending = [t for t in pending if t not in got]
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(last_ids)} bare chains not done after {timeout_s:.0f}s")
            time.sleep(0.25)
    return [done[t] for t in last_ids]


def worker_cpu(pid: int) -> float:
    """CPU seconds of a worker's main process and pool children."""
    return procs.cpu_s(pid) + sum(procs.cpu_s(c) for c in procs.children(pid))


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --------------------------------------------------------------------------------------------------
# 1. Overhead


@dataclass
class Variant:
    name: str
    label: str
    tasks_per_chain: int
    rates: list[float] = field(default_factory=list)  # chains/s per repetition
    cpu_ms: list[float] = field(default_factory=list)  # worker CPU per chain, per repetition
    commands: list[float] = field(default_factory=list)  # Redis commands per chain, per repetition
    redis_cpu_ms: list[float] = field(default_factory=list)
    bench_cpu_ms: list[float] = field(default_factory=list)
    by_command: Counter[str] = field(default_factory=Counter)  # Redis commands over every repetition
    rss_mb: float = 0.0
    rss_children_mb: list[float] = field(default_factory=list)
    tasks_done: int = 0


def bench_overhead(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    with bench_stack(redis_url, OVERHEAD_SPEED, watchdog_speed=1.0) as stack, redis.Redis.from_url(redis_url) as client:
        n_steps = steps_per_run()
        ours = Variant("ours", f"our v1 run ({n_steps} steps)", n_steps)
        bare = Variant("bare", f"bare Celery chain ({n_steps} no-op tasks)", n_steps)
        rt = runtime.runtime()
        token_provider(rt.settings, rt.redis).token()  # the IMS token cached, as in steady state
        counter = iter(range(10**9))
        bare_queue = stack.queue + "-bare"
        noop_app = create_noop_app(stack.settings().model_copy(update={"aep_queue": bare_queue}), n_steps)

        def run_ours(n: int, cmds: Commands) -> tuple[float, float]:
            t0 = time.time()
            ids = [start_activation(request(next(counter))) for _ in range(n)]
            ends = wait_runs(client, stack, ids, 120 + n, cmds)
            return t0, max(ends)

        def run_bare(n: int, cmds: Commands) -> tuple[float, float]:
            t0 = time.time()
            last = [send_noop_chain(noop_app, f"bare-{next(counter)}") for _ in range(n)]
            stack.bench_results.extend(last)  # type: ignore[attr-defined]
            ends = wait_bare(client, last, 120 + n, cmds)
            return t0, max(ends)

        pids: dict[str, int] = {}
        for v, app_module, queue in ((bare, "tests.benchkit.noop_app", bare_queue), (ours, "aep_activator.workers",
                                                                                     stack.queue)):  # fmt: skip
            env = {"BENCH_NOOP_TASKS": str(n_steps)}
            proc, log = procs.start_worker(stack, app=app_module, queue=queue, name=v.name,
                                           concurrency=sizes.concurrency, env=env)  # fmt: skip
            procs.wait_ready(proc, log, sizes.concurrency)
            pids[v.name] = proc.pid
        runners = {"ours": run_ours, "bare": run_bare}
        for v in (bare, ours):
            runners[v.name](sizes.warmup, Commands(client))
            v.tasks_done += sizes.warmup * v.tasks_per_chain
        # Both workers stay up: the idle one's BRPOP and our watchdog tick cost commands meanwhile.
        # Measure that background with both idle and take it off each repetition.
        idle = Commands(client)
        c0, t0 = idle.total(), time.monotonic()
        time.sleep(BACKGROUND_S)
        background_per_s = (idle.total() - c0 - 1) / (time.monotonic() - t0)
        stack.simulator.ctx.journal.clear()
        for rep in range(sizes.reps):
            for v in (bare, ours):  # alternating, so a slow patch of this shared machine hits both alike
                cmds = Commands(client)
                by_before = cmds.by_command()
                before = (worker_cpu(pids[v.name]), time.process_time(), redis_cpu(client), cmds.total())
                w0 = time.monotonic()
                start, end = runners[v.name](sizes.chains, cmds)
                wall = time.monotonic() - w0
                own = cmds.own
                after = (worker_cpu(pids[v.name]), time.process_time(), redis_cpu(client), cmds.total())
                v.by_command.update({k: c - by_before.get(k, 0) for k, c in cmds.by_command().items()})
                n = sizes.chains
                v.rates.append(n / (end - start))
                v.cpu_ms.append(1000 * (after[0] - before[0]) / n)
                v.bench_cpu_ms.append(1000 * (after[1] - before[1]) / n)
                v.redis_cpu_ms.append(1000 * (after[2] - before[2]) / n)
                v.commands.append((after[3] - before[3] - own - background_per_s * wall) / n)
                v.tasks_done += n * v.tasks_per_chain
                say(f"overhead: {v.name:4} rep {rep + 1}/{sizes.reps}: {v.rates[-1]:6.1f} chains/s, "
                    f"{v.cpu_ms[-1]:.1f} ms CPU, {v.commands[-1]:.0f} commands per chain")  # fmt: skip
        # Our polls: with every job done at the first look, a run is exactly its steps.
        polls_made = sum(1 for e in stack.journal(method="GET") if e["template"] in POLL_ROUTES.values())
        extra_polls = polls_made - sizes.reps * sizes.chains * 3  # three poll steps per run
        ours.tasks_done += extra_polls
        for v in (bare, ours):
            main, kids = procs.tree_rss_mb(pids[v.name])
            v.rss_mb, v.rss_children_mb = main + sum(kids), [main, *kids]
        stack.stop_worker(next(p for p in stack.workers if p.pid == pids["ours"]))
        trips = count_round_trips(stack, sizes, counter)
    ratio = statistics.median(ours.rates) / statistics.median(bare.rates)
    return {"ours": ours, "bare": bare, "ratio": ratio, "background_per_s": background_per_s,
            "background_s": BACKGROUND_S, "extra_polls": extra_polls, "trips": trips,
            "settings": polls.scaled(OVERHEAD_SPEED, 1.0)}  # fmt: skip


def count_round_trips(stack: Stack, sizes: Sizes, counter: Iterator[int]) -> dict[str, Any]:
    """Runs through the counted worker: Redis round trips and commands per step, by purpose."""
    count_dir = Path(tempfile.mkdtemp(prefix="aep-bench-count-"))
    proc, log = procs.start_worker(stack, app="tests.benchkit.counted_app", name="counted",
                                   concurrency=sizes.concurrency, env={"BENCH_COUNT_DIR": str(count_dir)})  # fmt: skip
    procs.wait_ready(proc, log, sizes.concurrency)
    with redis.Redis.from_url(stack.redis_url) as client:
        ids = [start_activation(request(next(counter))) for _ in range(sizes.counted_chains)]
        wait_runs(client, stack, ids, 120 + sizes.counted_chains, Commands(client))
    time.sleep(0.5)
    stack.stop_worker(proc)
    tasks = 0
    trips: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    for path in count_dir.glob("child-*.json"):
        data = json.loads(path.read_text())
        tasks += data["tasks"]
        trips.update(data["trips"])
        commands.update(data["commands"])
    return {"runs": sizes.counted_chains, "tasks": tasks, "trips": dict(trips), "commands": dict(commands)}


# --------------------------------------------------------------------------------------------------
# 2. Runs in flight


def bench_inflight(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    n = sizes.inflight
    speed = inflight_speed(n)
    timeout_s = max(1200.0, INFLIGHT_S_PER_RUN * n)
    with bench_stack(redis_url, speed) as stack, redis.Redis.from_url(redis_url) as client:
        rt = runtime.runtime()
        settings = rt.settings
        proc, log = procs.start_worker(stack, name="inflight", concurrency=sizes.concurrency)
        procs.wait_ready(proc, log, sizes.concurrency)
        token_provider(settings, rt.redis).token()
        waiting_after = settings.poll_segment_initial_s * (1 - settings.poll_jitter) / 2

        def waiting() -> int:
            return int(client.zcount(rt.keys.carriers, time.time() + waiting_after, "+inf"))

        start_activation(request(0, started_by="bench-warmup"))
        wait_until(lambda: waiting() == 1, timeout_s=60, what="the warm-up run to wait")
        idle_mb = sum_rss(proc.pid)
        mem_before = int(client.info("memory")["used_memory"])
        keys_before = int(client.dbsize())
        peak = idle_mb
        say(f"in-flight: enqueueing {n:,} runs")
        t0 = time.monotonic()
        for i in range(1, n + 1):
            start_activation(request(i))
        enqueue_s = time.monotonic() - t0

        def all_waiting() -> bool:
            nonlocal peak
            peak = max(peak, sum_rss(proc.pid))
            return waiting() >= n + 1 and client.llen(stack.queue) == 0

        wait_until(all_waiting, timeout_s=timeout_s, what="every run to wait", progress=waiting)
        all_waiting_s = time.monotonic() - t0
        time.sleep(2)
        main, kids = procs.tree_rss_mb(proc.pid)
        pss = procs.tree_pss_mb(proc.pid)
        held = worker_holdings(stack, client)
        mem_after = int(client.info("memory")["used_memory"])
        keys_after = int(client.dbsize())
        breakdown = key_memory(client, stack.prefix)
        encoding = hash_encoding(client, stack.prefix) if PRIVATE_REDIS else None
        tasks = 2 * (n + 1)  # create + first poll per run
        stack.stop_worker(proc)
        bare = bare_rss_after(stack, client, sizes, tasks, timeout_s)
    return {
        "runs": n, "concurrency": sizes.concurrency, "speed": speed, "enqueue_s": enqueue_s,
        "all_waiting_s": all_waiting_s, "rss_idle_mb": idle_mb, "rss_main_mb": main, "rss_children_mb": kids,
        "rss_total_mb": main + sum(kids), "rss_peak_mb": peak, "pss_total_mb": pss,
        "redis_used_delta_mb": (mem_after - mem_before) / 2**20, "redis_keys_delta": keys_after - keys_before,
        "key_memory": breakdown, "held": held, "tasks": tasks, "bare": bare, "encoding": encoding,
        "first_repoll_s": settings.poll_segment_initial_s,
    }  # fmt: skip


def sum_rss(pid: int) -> float:
    main, kids = procs.tree_rss_mb(pid)
    return main + sum(kids)


def bare_rss_after(stack: Stack, client: redis.Redis, sizes: Sizes, tasks: int, timeout_s: float) -> dict[str, Any]:
    """A bare worker's RSS after ``tasks`` no-op tasks (chains of two, like a waiting run's create + poll)."""
    queue = stack.queue + "-bare"
    noop_app = create_noop_app(stack.settings().model_copy(update={"aep_queue": queue}), 2)
    proc, log = procs.start_worker(stack, app="tests.benchkit.noop_app", queue=queue, name="inflight-bare",
                                   concurrency=sizes.concurrency, env={"BENCH_NOOP_TASKS": "2"})  # fmt: skip
    procs.wait_ready(proc, log, sizes.concurrency)
    idle = sum_rss(proc.pid)
    last = [send_noop_chain(noop_app, f"bare-{i}") for i in range(tasks // 2)]
    stack.bench_results.extend(last)  # type: ignore[attr-defined]
    wait_bare(client, last[-50:], timeout_s, Commands(client))
    wait_bare(client, last, timeout_s / 2, Commands(client))
    time.sleep(2)
    main, kids = procs.tree_rss_mb(proc.pid)
    stack.stop_worker(proc)
    return {"tasks": 2 * len(last), "rss_idle_mb": idle, "rss_total_mb": main + sum(kids), "rss_main_mb": main,
            "rss_children_mb": kids}  # fmt: skip


def wait_until(
    condition: Callable[[], bool], *, timeout_s: float, what: str, progress: Callable[[], Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    last_report = time.monotonic()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        if progress is not None and time.monotonic() - last_report > 20:
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
    unacked = 0
    for _, raw in client.hscan_iter("unacked", count=1000):
        with contextlib.suppress(ValueError, IndexError):
            unacked += json.loads(raw)[2] == stack.queue
    out["unacked"] = unacked
    out["queued"] = int(client.llen(stack.queue))
    return out


def key_memory(client: redis.Redis, prefix: str) -> dict[str, dict[str, float]]:
    """``MEMORY USAGE`` summed by kind of key (the layout of ``aep/coordination/keys.py``)."""
    groups: dict[str, list[bytes]] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        name = key.decode()[len(prefix) :]
        head = name.split(":", 1)[0]
        if head == "run":
            kind = "run:{id}:" + name.rsplit(":", 1)[1] if name.count(":") >= 2 else "run:{id} (HASH)"
        elif head in ("owner", "quota", "line", "lock", "idem", "callback", "status", "ims"):
            kind = f"{head}:…"
        else:
            kind = name
        groups.setdefault(kind, []).append(key)
    results = [k for k in client.scan_iter(match=f"{RESULT_PREFIX}*", count=1000)]
    if results:
        groups["celery-task-meta-* (all stacks)"] = results
    out: dict[str, dict[str, float]] = {}
    for kind, keys in groups.items():
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        out[kind] = {"keys": len(keys), "bytes": float(sum(x or 0 for x in pipe.execute()))}
    return out


def compose_redis_setting(name: str) -> int:
    """A setting docker-compose.yml's Redis runs with (``--name value`` in its command): the shipped one."""
    import yaml

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    command = compose["services"]["redis"]["command"]
    return int(command[command.index(f"--{name}") + 1])


def hash_encoding(client: redis.Redis, prefix: str, sample: int = 200) -> dict[str, Any]:
    """Why a run record costs what it does: the encoding of its two hashes (the record, and its long fields'
    ``:long`` hash), the fields too long for a listpack, and what the same hashes cost with the
    ``hash-max-listpack-value`` that docker-compose.yml gives its Redis (DUMP/RESTORE of a sample into
    scratch keys on the private server; the setting is put back)."""
    depth = prefix.count(":") + 1
    records = [k for k in client.scan_iter(match=f"{prefix}run:*", count=1000) if k.count(b":") == depth][:sample]
    limit = int(client.config_get("hash-max-listpack-value")["hash-max-listpack-value"])
    kinds = {"record": records, "long": [k + b":long" for k in records]}
    out: dict[str, Any] = {"sample": len(records), "limit": limit, "raised": compose_redis_setting(
        "hash-max-listpack-value"), "encodings": {}, "over": {}, "bytes_before": 0.0, "bytes_after": 0.0}
    for kind, keys in kinds.items():
        longest: dict[str, int] = {}
        encodings: Counter[str] = Counter()
        for key in keys:
            if not client.exists(key):
                continue
            encodings[client.object("encoding", key).decode()] += 1
            out["bytes_before"] += (client.memory_usage(key, samples=0) or 0) / max(1, len(records))
            for name, value in client.hgetall(key).items():
                longest[name.decode()] = max(longest.get(name.decode(), 0), len(value))
        out["encodings"][kind] = dict(encodings)
        out["over"][kind] = {name: n for name, n in sorted(longest.items(), key=lambda kv: -kv[1]) if n > limit}
    try:
        client.config_set("hash-max-listpack-value", out["raised"])
        for i, key in enumerate(k for keys in kinds.values() for k in keys):
            if not client.exists(key):
                continue
            scratch = f"{prefix}bench:scratch:{i}"
            client.restore(scratch, 0, client.dump(key), replace=True)
            out["bytes_after"] += (client.memory_usage(scratch, samples=0) or 0) / max(1, len(records))
            client.delete(scratch)
    finally:
        client.config_set("hash-max-listpack-value", limit)
    return out


# --------------------------------------------------------------------------------------------------
# 3. Detection delay and AEP calls

POLL_ROUTES = {
    "segment job": "/data/core/ups/segment/jobs/{id}",
    "export job": "/data/core/ups/export/jobs/{id}",
    "ad-hoc flow run": "/data/foundation/flowservice/runs/{id}",
}
SUMMARY_KIND = {"segment job": "segment", "export job": "export", "ad-hoc flow run": "activation"}
SCHEDULE = {  # kind -> (initial, cap) setting names
    "segment job": ("poll_segment_initial_s", "poll_segment_cap_s"),
    "export job": ("poll_export_initial_s", "poll_export_cap_s"),
    "ad-hoc flow run": ("poll_activation_initial_s", "poll_activation_cap_s"),
}


@dataclass
class JobDelay:
    kind: str
    duration_s: list[float] = field(default_factory=list)  # simulated job length (real-AEP s / speed)
    next_s: list[float] = field(default_factory=list)  # job end -> next step started (or the run ended)
    seen_s: list[float] = field(default_factory=list)  # job end -> the first GET at or after it (the schedule's part)
    model_s: list[float] = field(default_factory=list)  # what the schedule alone gives (no jitter, no machinery)
    gets: list[int] = field(default_factory=list)  # GETs of this job
    model_gets: list[int] = field(default_factory=list)  # GETs the geometric schedule alone would make

    def share(self) -> list[float]:
        return [v / d for v, d in zip(self.next_s, self.duration_s, strict=True)]

    def seen_share(self) -> list[float]:
        return [v / d for v, d in zip(self.seen_s, self.duration_s, strict=True)]

    def handoff_s(self) -> list[float]:
        """From the GET that saw the job done to the next step's start: the machinery's part, real seconds."""
        return [n - v for n, v in zip(self.next_s, self.seen_s, strict=True)]

    def model_share(self) -> list[float]:
        return [v / d for v, d in zip(self.model_s, self.duration_s, strict=True)]


def schedule_delay(duration_s: float, initial_s: float, cap_s: float, factor: float) -> tuple[float, int]:
    """From a job's end to the first poll at or after it, and the polls made: polls at 0, then every
    ``min(cap, initial·factorⁿ)`` (the geometric schedule, no jitter)."""
    t, n = 0.0, 0
    while t < duration_s:
        t += min(cap_s, initial_s * factor**n)
        n += 1
    return t - duration_s, n + 1


def bench_detection(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    speed = sizes.detect_speed
    n = sizes.detect_runs
    with bench_stack(redis_url, speed) as stack:
        rt = runtime.runtime()
        s = rt.settings
        proc, log = procs.start_worker(stack, name="detection", concurrency=sizes.concurrency)
        procs.wait_ready(proc, log, sizes.concurrency)
        token_provider(s, rt.redis).token()
        longest = 3 * 4.5 * (780 + 300 + 180) / speed  # a 3-sigma draw of every job

        def finish(run_ids: list[str], what: str) -> None:
            wait_until(lambda: all(r is not None and r.terminal for r in (rt.ledger.get(i, timeline=False)
                                                                           for i in run_ids)),
                       timeout_s=120 + longest, what=what)  # fmt: skip

        # Warm-up runs fill the duration summary that adaptive polls read, as a deployment's past jobs would.
        finish([start_activation(request(1000 + i)) for i in range(sizes.detect_warmup)], "the warm-up runs to finish")
        summary = {kind: len(rt.durations.recent(name, s.aep_sandbox_name)) if rt.durations else 0
                   for kind, name in SUMMARY_KIND.items()}  # fmt: skip
        stack.simulator.ctx.journal.clear()
        run_ids = [start_activation(request(i)) for i in range(n)]
        finish(run_ids, "the detection runs to finish")
        runs = [rt.ledger.get(r) for r in run_ids]
        journal = stack.journal()
        state = stack.simulator.state
        stack.stop_worker(proc)
    failed = [(r.run_id, r.error) for r in runs if r is not None and r.status != "succeeded"]
    if failed:
        raise RuntimeError(f"detection runs failed: {failed[:3]}")
    calls: Counter[str] = Counter(f"{e['method']} {e['template']}" for e in journal)
    get_times: dict[str, list[float]] = {}  # path -> when each GET of it came
    for e in journal:
        if e["method"] == "GET":
            get_times.setdefault(e["path"], []).append(float(e["time"]))

    def first_look(path: str, ends: float) -> float:
        """The first GET of ``path`` at or after ``ends`` (the one that found the job done)."""
        return min(t for t in get_times[path] if t >= ends)
    delays = {kind: JobDelay(kind) for kind in POLL_ROUTES}

    def add(kind: str, created: float, ends: float, next_started: float, paths: list[str], seen: float) -> None:
        d = delays[kind]
        initial, cap = (getattr(s, name) for name in SCHEDULE[kind])
        d.duration_s.append(ends - created)
        d.next_s.append(next_started - ends)
        d.seen_s.append(seen - ends)
        late, polls_made = schedule_delay(ends - created, initial, cap, s.poll_factor)
        d.model_s.append(late)
        d.model_gets.append(polls_made)
        d.gets.append(sum(len(get_times.get(p, ())) for p in paths))

    for run in runs:
        assert run is not None and run.segment_job_id and run.export_job_id
        t = timeline_times(run.timeline)
        job = state.segment_jobs[run.segment_job_id]
        path = f"/data/core/ups/segment/jobs/{run.segment_job_id}"
        add("segment job", job.created, job.ends_at, t["create_export_job", "started"], [path],
            first_look(path, job.ends_at))  # fmt: skip
        ejob = state.export_jobs[int(run.export_job_id)]
        path = f"/data/core/ups/export/jobs/{run.export_job_id}"
        add("export job", ejob.created, ejob.ends_at, t["run_activation", "started"], [path],
            first_look(path, ejob.ends_at))  # fmt: skip
        flows = [state.flow_runs[o["run_id"]] for o in run.flow_runs]
        paths = [f"/data/foundation/flowservice/runs/{f['run_id']}" for f in run.flow_runs]
        add("ad-hoc flow run", min(f.created for f in flows), max(f.ends_at for f in flows),
            t["poll_activation", "succeeded"], paths,
            max(first_look(p, f.ends_at) for p, f in zip(paths, flows, strict=True)))  # fmt: skip
    return {
        "runs": n, "speed": speed, "settings": polls.scaled(speed), "sigma": SIGMA, "warmup": sizes.detect_warmup,
        "summary": summary, "summary_min": s.poll_summary_min,
        "per_run": {route: c / n for route, c in sorted(calls.items())}, "delays": list(delays.values()),
    }  # fmt: skip


def timeline_times(timeline: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """``(step, event) -> t`` of the first such event."""
    out: dict[tuple[str, str], float] = {}
    for event in timeline:
        out.setdefault((event["step"], event["event"]), float(event["t"]))
    return out


# --------------------------------------------------------------------------------------------------
# 4. Enqueue latency


def bench_enqueue(redis_url: str, sizes: Sizes) -> dict[str, Any]:
    """``start_activation(on_quota="fail")`` back to back, no worker running (nothing competes for CPU)."""
    with bench_stack(redis_url, 1.0) as stack:
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
        "calls": len(latencies), "p50_ms": pct(latencies, 50), "p90_ms": pct(latencies, 90),
        "p99_ms": pct(latencies, 99), "max_ms": max(latencies), "mean_ms": statistics.fmean(latencies),
        "queued": queued,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Entry point


def machine(client: redis.Redis) -> dict[str, str]:
    load1, load5, load15 = os.getloadavg()
    return {
        "cores (nproc)": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
        "Python": platform.python_version(),
        "Redis": str(client.info("server")["redis_version"]),
        "Celery / kombu": f"{celery.__version__} / {kombu.__version__}",
        "redis-py": redis.__version__,
        "OS": platform.platform(),
        "load average at start (1 / 5 / 15 min)": f"{load1:.2f} / {load5:.2f} / {load15:.2f}",
        **calibration(client),
    }


def calibration(client: redis.Redis) -> dict[str, str]:
    """How fast this machine is at the start of the run, to set runs of different days side by side.

    Its speed moves from day to day (the machine is shared): a step's CPU is mostly round trips (Redis,
    AEP), so a day on which a round trip costs more CPU moves our worker's CPU per chain, and the ratios
    against bare Celery, more than bare's. Each figure is the median of 3 timings, in CPU time."""

    def per_call(fn: Callable[[], object], n: int) -> float:
        timings = []
        for _ in range(3):
            t0 = time.process_time()
            for _ in range(n):
                fn()
            timings.append((time.process_time() - t0) / n)
        return statistics.median(timings)

    ping = per_call(client.ping, 5000)
    python = per_call(lambda: sum(i * i for i in range(1000)), 2000)
    return {
        "calibration: CPU per Redis round trip (redis-py `PING`, this process)": f"{ping * 1e6:.0f} µs",
        "calibration: CPU per fixed piece of pure Python (`sum(i * i for i in range(1000))`)": f"{python * 1e6:.0f} µs",
    }


STAGES: dict[str, Callable[[str, Sizes], dict[str, Any]]] = {
    "overhead": bench_overhead,
    "inflight": bench_inflight,
    "detection": bench_detection,
    "enqueue": bench_enqueue,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run (about a minute); no report")
    parser.add_argument("--redis-url", help="use this Redis (database 15 advised) instead of a private server")
    parser.add_argument("--output", type=Path, help="report path (default: BENCHMARKS.md; none with --quick)")
    parser.add_argument("--only", choices=list(STAGES), action="append", help="run only this stage (repeatable)")
    parser.add_argument("--inflight", type=int, metavar="N", help="runs in flight in stage inflight (default: 10,000)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.inflight is not None:
        sizes = replace(sizes, inflight=args.inflight)
    output = args.output or (None if args.quick else REPO_ROOT / "BENCHMARKS.md")
    random.seed(SEED)
    started = time.monotonic()
    started_at = time.gmtime()
    global PRIVATE_REDIS
    PRIVATE_REDIS = args.redis_url is None
    server = provision(args.redis_url, db=15)
    say(server.describe())
    results: dict[str, Any] = {}
    loads: dict[str, tuple[float, float, float]] = {}
    try:
        with redis.Redis.from_url(server.url) as client:
            host = machine(client)
        say(f"sizes: {sizes}")
        for name, stage in STAGES.items():
            if args.only and name not in args.only:
                continue
            say(f"stage {name} (load average {os.getloadavg()[0]:.2f})")
            results[name] = stage(server.url, sizes)
            loads[name] = os.getloadavg()
    finally:
        server.stop()
    if scale := read_scale_figures(SCALE_REPORT):  # make bench-scale's, with its date
        results["scale"] = scale
    elapsed = time.monotonic() - started
    meta = {"started_at": started_at, "elapsed_s": elapsed, "argv": argv if argv is not None else sys.argv[1:],
            "redis": server.describe(), "host": host, "loads": loads, "seed": SEED, "sigma": SIGMA,
            "overhead_speed": OVERHEAD_SPEED,
            "memory_bytes": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")}  # fmt: skip
    text = render(results, sizes, meta)
    print(text)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        say(f"wrote {output} ({elapsed:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fault-injection matrix: a crash at each named point of the step path, one point per run.

For every (point, step, mode) the worker (``tests/chaos/crash_app.py``) dies, or takes a soft time
limit, or stalls while Redis (AOF) is killed and restarted, exactly there and exactly once. A supervisor
(this test) restarts a worker that died. Then the run must reach ``succeeded`` with, per step, exactly
one accepted POST and no POST attempt while an earlier one's outcome was unknown; the quota ledger never
above its limit; no audience lock left behind; and the run moving again within ``WATCHDOG_GRACE_S`` of
the moment its carrier was due (the carrier's deadline just after the crash).

``CHAOS_SCALE=ci`` (``make test``) runs each point once, the modes rotated across points; ``full``
(``make chaos``) runs every point with every mode, and every step with SIGKILL. ``make chaos`` writes
the measured recovery times to RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from aep_activator.aep.api import paths
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aepsim.config import Guardrails, SimulatorConfig
from aep_activator.devstack.stack import REPO_ROOT, Stack
from aep_activator.tasks import runtime, start_activation
from tests.chaos.conftest import PAIRS, SCALE, PrivateRedis, repoint_app, v1_request

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

CREATES = ("create_segment_job", "create_export_job", "run_activation")
STEPS = ("create_segment_job", "poll_segment_job", "create_export_job", "poll_export_job", "run_activation",
         "poll_activation")  # fmt: skip
POST_OF = {"create_segment_job": paths.SEGMENT_JOBS, "create_export_job": paths.EXPORT_JOBS,
           "run_activation": paths.ADHOC_RUN}  # fmt: skip
REACHES = {  # which steps reach each point (claimed: only a create step adopting a lost POST's job)
    "entered": STEPS, "intent": CREATES, "post-sent": CREATES, "claimed": CREATES, "answered": STEPS,
    "left": STEPS, "published": STEPS[:-1], "brpop": STEPS,  # the last step publishes no successor
}  # fmt: skip
MODES = ("child", "main", "term", "soft", "redis")
ENV = {
    "TASK_TIME_LIMIT_S": "4", "VISIBILITY_TIMEOUT_S": "8", "WATCHDOG_GRACE_S": "3", "LOOK_SETTLE_S": "4",
    "AEP_CONNECT_TIMEOUT_S": "1", "AEP_READ_TIMEOUT_S": "2", "QUOTA_SEGMENT_JOBS_PER_DAY": "10000",
    "QUOTA_SEGMENT_JOBS_PER_YEAR_PRODUCTION": "100000",
    "QUOTA_ADHOC_PER_DAY": "1000", "DELAY_PUMP_INTERVAL_S": "0.1",
}  # fmt: skip
LEASE_S = 4 + 2.0
GRACE_S = 3.0


@dataclass(frozen=True)
class Case:
    point: str
    step: str
    mode: str

    @property
    def id(self) -> str:
        return f"{self.point}-{self.step}-{self.mode}"


def cases() -> list[Case]:
    if SCALE == "full":
        out = [Case(p, steps[len(steps) // 2], m) for p, steps in REACHES.items() for m in MODES
               if not (p == "brpop" and m == "soft")]  # fmt: skip
        out += [Case(p, s, "child") for p, steps in REACHES.items() for s in steps]
        return list(dict.fromkeys(out))
    rotation = {"entered": "child", "intent": "main", "post-sent": "child", "claimed": "redis",
                "answered": "soft", "left": "redis", "published": "term", "brpop": "child"}  # fmt: skip
    spread = {"entered": "poll_segment_job", "intent": "create_segment_job", "post-sent": "run_activation",
              "claimed": "create_export_job", "answered": "run_activation", "left": "poll_export_job",
              "published": "create_segment_job", "brpop": "poll_activation"}  # fmt: skip
    return [Case(p, spread[p], m) for p, m in rotation.items()] + [Case("answered", "create_segment_job", "child")]


RECOVERIES: list[tuple[str, float]] = []


class Harness:
    """One stack on a private AOF Redis, one worker at a time, restarted when it dies (a supervisor)."""

    def __init__(self, stack: Stack, server: PrivateRedis) -> None:
        self.stack = stack
        self.server = server
        self.client = redis.Redis.from_url(server.url)
        self.dead: list[subprocess.Popen[bytes]] = []
        self.redis_back_at = 0.0
        self.worker = self.start_worker()

    def start_worker(self):  # type: ignore[no-untyped-def]
        proc = self.stack.start_worker(concurrency=1, app="tests.chaos.crash_app",
                                       name=f"w{len(self.stack.workers) + 1}")  # fmt: skip
        self.stack.wait_worker_ready(proc, timeout_s=60)
        return proc

    def supervise(self) -> None:
        if self.worker.poll() is not None:
            self.dead.append(self.worker)  # its pool child may still finish a step, orphaned
            self.stack.workers.remove(self.worker)
            self.worker = self.start_worker()

    def close(self) -> None:
        for proc in self.dead:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def arm(self, case: Case, mode: str) -> None:
        self.client.hset(self.stack.prefix + "crash:arm", f"{case.point}:{case.step}", mode)

    def fired(self) -> list[dict[str, object]]:
        return [json.loads(x) for x in self.client.lrange(self.stack.prefix + "crash:fired", 0, -1)]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    server = PrivateRedis(aof=True)
    server.start()
    # One stack serves the whole matrix: the full one makes some 70 segment jobs in "prod", beyond its 50 a year.
    guardrails = Guardrails(segment_jobs_per_day_per_sandbox=10_000, segment_jobs_per_year_production=100_000,
                            adhoc_jobs_per_day_per_org=10_000)  # fmt: skip
    stack = Stack.start(server.url, sim_config=SimulatorConfig(speed=600, seed=91, guardrails=guardrails), env=ENV)
    repoint_app(stack.settings())
    h = Harness(stack, server)
    yield h
    h.close()
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    stack.stop()
    server.stop()
    repoint_app(None)
    if SCALE == "full" and RECOVERIES:
        write_reliability(RECOVERIES)


def _restart_redis_when_held(h: Harness, fifo: str, stop: threading.Event) -> None:
    """While a hook holds a step, kill Redis (-9, AOF) and bring it back, then let the step go on."""
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if h.fired():
                break
        except redis.RedisError:
            pass
        time.sleep(0.05)
    else:
        return
    h.server.crash()
    time.sleep(3.0)  # a 3 s outage: longer than any publish retry (the carrier must cover it)
    h.server.start()
    h.redis_back_at = time.time()
    with open(fifo, "w") as f:
        f.write("go")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
def test_a_crash_at_each_point_breaks_no_promise(harness: Harness, case: Case, figures: Callable[..., None]) -> None:
    h = harness
    h.client.delete(h.stack.prefix + "crash:fired")
    h.redis_back_at = 0.0
    flow, audience = PAIRS[len(RECOVERIES) % len(PAIRS)]
    fifo = ""
    stop = threading.Event()
    if case.mode == "redis":
        fifo = os.path.join(tempfile.mkdtemp(prefix="aep-crash-"), "fifo")
        os.mkfifo(fifo)
        h.arm(case, f"hold:{fifo}")
        threading.Thread(target=_restart_redis_when_held, args=(h, fifo, stop), daemon=True).start()
    else:
        h.arm(case, case.mode)
    if case.point == "claimed":  # reach the adopt path: the step's POST is accepted and its answer lost
        h.stack.simulator.ctx.apply_config(
            {"hang_s": 3.0, "endpoint_faults": {f"POST {POST_OF[case.step]}": {"hang_rate": 1.0}}}
        )
    run_id = start_activation({**v1_request(flow, audience), "idempotency_key": f"matrix-{case.id}-{time.time()}"})
    rt = runtime.runtime()
    due: float | None = None
    fired_at: float | None = None
    deadline = time.monotonic() + 90
    while True:
        try:
            h.supervise()
            fired = h.fired() if fired_at is None else []
        except redis.RedisError:  # Redis is being restarted under the test
            fired = []
        if fired_at is None and fired:
            fired_at = float(fired[0]["t"])  # type: ignore[arg-type]
            if case.point == "claimed":
                unhang = {"endpoint_faults": {f"POST {POST_OF[case.step]}": {"hang_rate": 0.0}}}
                h.stack.simulator.ctx.apply_config(unhang)
            time.sleep(0.3)  # let the crash land before reading the carrier it left
            try:
                due = rt.carriers.deadline(run_id)
            except redis.RedisError:
                due = None
        try:
            record = rt.ledger.get(run_id)
        except redis.RedisError:
            record = None
        if record is not None and record.terminal:
            break
        assert time.monotonic() < deadline, (case, record, h.stack.worker_log()[-3000:])
        time.sleep(0.1)
    stop.set()
    assert fired_at is not None, f"{case.id}: the crash point was never reached"
    assert record.status == "succeeded", (record.error, record.timeline)

    history = {step: posts for (rid, step), posts in h.stack.post_history().items() if rid == run_id}
    accepted = {step: sum(e["status"] == "hung" or (isinstance(e["status"], int) and e["status"] < 300)
                          for e in posts) for step, posts in history.items()}  # fmt: skip
    assert accepted == dict.fromkeys(CREATES, 1), (accepted, history)
    violations = [v for v in h.stack.post_promise_violations(settle_s=4.0) if run_id in v]
    assert violations == [], violations

    req = ActivationRequest.model_validate(record.request)
    held = [a for a in req.audiences if rt.locks.owners([a])[a] == run_id]
    assert held == [], "an audience lock outlived its run"

    moved = [e["t"] for e in record.timeline if e["t"] > fired_at + 0.05 and e["event"] != "recovered"]
    if due is not None and moved and case.mode not in ("term",):
        # Nothing moves while Redis is down: with a Redis restart, count from its return (the workers must
        # also reconnect, with kombu's backoff).
        since = max(due, h.redis_back_at) if case.mode == "redis" else due
        late = max(0.0, moved[0] - since)
        RECOVERIES.append((case.id, late))
        figures("moved again after its carrier was due (s)", f"{case.id}: {late:.2f}")
        bound = GRACE_S + (10 if case.mode == "redis" else 5)
        assert late <= bound, f"{case.id}: the run moved again {late:.1f}s after its carrier was due"
    if case.point == "claimed":
        assert any(e["event"] == "adopted" for e in record.timeline), record.timeline


def _quota_usage():  # type: ignore[no-untyped-def]
    from aep_activator.tasks.producer import quota_usage

    try:
        return quota_usage()
    except redis.RedisError:
        return []


def _by_mode(recoveries: list[tuple[str, float]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for case, late in recoveries:
        out.setdefault(case.rsplit("-", 1)[1], []).append(late)
    return out


def write_reliability(recoveries: list[tuple[str, float]]) -> None:
    lates = [late for _, late in recoveries]
    lines = [
        "# Reliability",
        "",
        f"Written by `make chaos` (the full fault-injection matrix, `tests/chaos/test_crash_matrix.py`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; `make bench` leaves this file alone.",
        "",
        f"{len(recoveries)} crashes, one point per run, each with WATCHDOG_GRACE_S={GRACE_S:g}, TASK_TIME_LIMIT_S=4 "
        f"(a dead step's lease: {LEASE_S:g} s). *Late* is how long after its carrier was due (a wait's end, "
        "a lost wake-up's grace, a dead step's lease) the run moved again. The watchdog acts within "
        "WATCHDOG_GRACE_S of that moment; the test allows 5 s more for a worker's restart by its supervisor, "
        "and after a Redis restart (mode `redis`) counts from Redis's return and allows 10 s more, for the "
        "workers' reconnect with kombu's backoff. Every case also ended `succeeded` with one accepted POST per "
        "step, no POST attempt while an earlier one's outcome was unknown, the quota ledger within its "
        "limit and no audience lock left. A warm shutdown (mode `term`) lets the step finish, so it has no late "
        "figure and is not listed.",
        "",
        "| mode | crashes | median late (s) | max late (s) |",
        "|---|---|---|---|",
        *(f"| {mode} | {len(xs)} | {statistics.median(xs):.2f} | {max(xs):.2f} |"
          for mode, xs in _by_mode(recoveries).items()),
        f"| all | {len(lates)} | {statistics.median(lates):.2f} | {max(lates):.2f} |",
        "",
        "| case (point-step-mode) | late (s) |",
        "|---|---|",
        *(f"| {case} | {late:.2f} |" for case, late in recoveries),
        "",
    ]
    (Path(REPO_ROOT) / "RELIABILITY.md").write_text("\n".join(lines))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("point", ["post-sent", "answered"])
def test_a_worker_killed_between_aeps_answer_and_recording_it_never_lets_a_second_post_over_quota(
    make_stack: Callable[..., Stack], point: str
) -> None:
    """The reproduced overshoot: quota 1, the worker dies after AEP accepted the segment job; a second run
    must wait for the next window, never POST (it did when the old reservation lapsed after 900 s)."""
    stack = make_stack(SimulatorConfig(speed=600, seed=93), env={**ENV, "QUOTA_SEGMENT_JOBS_PER_DAY": "1"})
    client = redis.Redis.from_url(stack.redis_url)
    client.hset(stack.prefix + "crash:arm", f"{point}:create_segment_job", "child")
    worker = stack.start_worker(concurrency=1, app="tests.chaos.crash_app")
    stack.wait_worker_ready(worker)
    first = start_activation(v1_request(*PAIRS[0]))
    deadline = time.monotonic() + 30
    while not client.llen(stack.prefix + "crash:fired"):  # the pool child dies; the worker forks another
        assert time.monotonic() < deadline, "the crash point was never reached"
        time.sleep(0.05)
    second = start_activation(v1_request(*PAIRS[3]))
    ledger = runtime.runtime().ledger
    deadline = time.monotonic() + 60
    while True:
        a, b = ledger.get(first), ledger.get(second)
        if a and a.terminal and b and b.status == "waiting" and b.wait_kind == "quota":
            break
        assert time.monotonic() < deadline, (a, b)
        time.sleep(0.2)
    time.sleep(LEASE_S)  # longer than any lease: an overshooting POST would have come
    assert a.status == "succeeded", (a.error, a.timeline)
    assert stack.posts().get(paths.SEGMENT_JOBS) == 1, [e["status"] for e in stack.journal("POST", paths.SEGMENT_JOBS)]
    client.close()

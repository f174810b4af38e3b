"""Redis dies (kill -9) mid-run and comes back on the same port and directory.

With AOF (``appendfsync always``) every run, queued message, delayed poll and quota entry survives and
every run succeeds once the workers have reconnected. Without persistence the restart is amnesia: this
scenario does not assert success there, it asserts and prints what is lost, so the README's advice
(run Redis with AOF) rests on a measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from aep_activator.aep.coordination.runs import RunLedger
from aep_activator.aepsim.config import Guardrails, SimulatorConfig
from aep_activator.devstack.stack import Stack
from aep_activator.tasks import runtime, start_activation
from tests.chaos.conftest import ADHOC_POST, PAIRS, SEGMENT_POST, PrivateRedis, repoint_app, scaled, v1_request

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

RUNS = scaled(3, 12)
DOWNTIME_S = 2.0
_TABLE: dict[str, dict[str, object]] = {}


@pytest.fixture
def stack_on(private_redis: Callable[..., PrivateRedis]) -> Iterator[Callable[[bool], tuple[Stack, PrivateRedis]]]:
    """A stack whose Redis is a private server the test may crash (AOF on or off)."""
    made: list[tuple[Stack, PrivateRedis]] = []

    def make(aof: bool) -> tuple[Stack, PrivateRedis]:
        server = private_redis(aof=aof)
        config = SimulatorConfig(speed=100, seed=23, guardrails=Guardrails(segment_jobs_per_day_per_sandbox=1000))
        stack = Stack.start(
            server.url,
            sim_config=config,
            env={"QUOTA_SEGMENT_JOBS_PER_DAY": "1000", "VISIBILITY_TIMEOUT_S": "8", "TASK_TIME_LIMIT_S": "6"},
        )
        made.append((stack, server))
        repoint_app(stack.settings())
        return stack, server

    yield make
    for stack, server in made:
        if server.proc is None or server.proc.poll() is not None:
            server.start()  # Stack.stop deletes its keys
        stack.stop()
    repoint_app(None)


def _has_segment_job(ledger: RunLedger, run_id: str) -> bool:
    record = ledger.get(run_id, timeline=False)
    return bool(record and record.segment_job_id)


def snapshot(client: redis.Redis, prefix: str, queue: str) -> dict[str, int]:
    run_key_colons = prefix.count(":") + 1  # {prefix}run:{id}, not its :timeline or :pinned
    return {
        "run records": sum(1 for k in client.scan_iter(match=f"{prefix}run:*") if k.count(b":") == run_key_colons),
        "queued messages": int(client.llen(queue)),
        "carried runs": int(client.zcard(f"{prefix}carriers")),
        "quota keys": sum(1 for _ in client.scan_iter(match=f"{prefix}quota:*")),
    }


def restart_mid_run(aof: bool, stack_on, figures) -> dict[str, object]:
    stack, server = stack_on(aof)
    workers = [stack.start_worker(name="w1"), stack.start_worker(name="w2")]
    for w in workers:
        stack.wait_worker_ready(w)
    ledger = runtime.runtime().ledger
    run_ids = [start_activation(v1_request(*PAIRS[i % len(PAIRS)])) for i in range(RUNS)]
    # Let the runs get going (segment jobs created, polls waiting in the delay queue), then crash Redis.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(_has_segment_job(ledger, r) for r in run_ids) < RUNS:
        time.sleep(0.1)
    time.sleep(0.5)
    with redis.Redis.from_url(server.url) as client:
        before = snapshot(client, stack.prefix, stack.queue)
    server.crash()
    time.sleep(DOWNTIME_S)
    server.start()
    with redis.Redis.from_url(server.url) as client:
        after = snapshot(client, stack.prefix, stack.queue)

    # Give the workers time to reconnect (kombu retries) and the runs time to finish. A worker that
    # died in the outage is restarted, as a process supervisor would (docker-compose: restart: unless-stopped).
    deadline = time.monotonic() + scaled(90, 150)
    records = [ledger.get(r) for r in run_ids]
    died: list[str] = []
    while time.monotonic() < deadline:
        for w in [w for w in stack.workers if w.poll() is not None]:
            died.append(f"exit {w.returncode}")
            stack.workers.remove(w)
            stack.wait_worker_ready(stack.start_worker(name=f"w{len(died) + 2}"))
        records = [ledger.get(r) for r in run_ids]
        if aof and all(r is not None and r.terminal for r in records):
            break
        if not aof and time.monotonic() > deadline - scaled(90, 150) + 10:
            break  # 10 s after the restart: whatever is coming back would have by now
        time.sleep(0.25)
    crash_lines = stack.worker_log().count("Unrecoverable error")
    outcome = {
        "runs": RUNS,
        "records after restart": after["run records"],
        "carried runs before/after": f"{before['carried runs']}/{after['carried runs']}",
        "quota keys before/after": f"{before['quota keys']}/{after['quota keys']}",
        "succeeded": sum(bool(r and r.status == "succeeded") for r in records),
        "vanished": sum(r is None for r in records),
        "stuck (not terminal)": sum(bool(r and not r.terminal) for r in records),
        "failed": sum(bool(r and r.status == "failed") for r in records),
        "ad-hoc POSTs": stack.posts().get(ADHOC_POST, 0),
        "segment jobs at AEP": stack.posts().get(SEGMENT_POST, 0),
        "workers died": f"{len(died)}/2",
        "kombu crash logs": crash_lines,
    }
    _TABLE["AOF always" if aof else "no persistence"] = outcome
    figures("outcome", outcome)
    if len(_TABLE) == 2:
        figures("what survived a Redis kill -9 + restart", "\n" + table(_TABLE))
    return {"outcome": outcome, "records": records, "stack": stack}


def table(rows: dict[str, dict[str, object]]) -> str:
    cols = list(next(iter(rows.values())))
    width = max(len(col) for col in cols)
    lines = [f"  {'':{width}}  " + "  ".join(f"{name:>16}" for name in rows)]  # a header row
    for col in cols:
        lines.append(f"  {col:{width}}  " + "  ".join(f"{rows[name][col]!s:>16}" for name in rows))
    return "\n".join(lines)


@pytest.mark.timeout(scaled(180, 300))
def test_with_aof_a_redis_crash_mid_run_loses_no_run_and_every_run_succeeds(stack_on, figures):
    result = restart_mid_run(True, stack_on, figures)
    outcome, records = result["outcome"], result["records"]
    assert outcome["records after restart"] == RUNS
    bad = [(r.run_id, r.status, r.step, r.error) for r in records if r is not None and r.status != "succeeded"]
    assert outcome["vanished"] == 0 and not bad, (bad, result["stack"].worker_log()[-4000:])
    assert outcome["ad-hoc POSTs"] == RUNS


@pytest.mark.timeout(scaled(180, 300))
def test_without_persistence_a_redis_crash_mid_run_forgets_the_runs_as_documented(stack_on, figures):
    result = restart_mid_run(False, stack_on, figures)
    outcome = result["outcome"]
    # The documented outcome: the restarted Redis is empty. Run records, queued and delayed steps and
    # the quota ledger are gone, so the runs never finish and nothing activates (AEP still runs the
    # segment jobs it accepted: those evaluations are spent for nothing).
    assert outcome["records after restart"] == 0
    assert outcome["carried runs before/after"].endswith("/0")
    assert outcome["quota keys before/after"].endswith("/0")
    assert outcome["succeeded"] == 0
    assert outcome["ad-hoc POSTs"] == 0
    assert outcome["vanished"] + outcome["stuck (not terminal)"] == RUNS

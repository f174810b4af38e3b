"""kill -9 of the workers at random moments, again and again, while full v1 chains run.

What it proves: every run still reaches ``succeeded``, AEP accepted exactly one POST per step per run
(the simulator's journal), every run owns AEP ids of its own, and a run whose step died with its
worker resumes after about ``VISIBILITY_TIMEOUT_S`` (Redis redelivers the unacknowledged message).
"""

from __future__ import annotations

import random
import statistics
import time

import pytest

from aep_activator.aepsim.config import FaultSettings, Guardrails, SimulatorConfig
from aep_activator.tasks import runtime, start_activation
from tests.chaos.conftest import (
    ADHOC_POST,
    EXPORT_POST,
    PAIRS,
    SEGMENT_POST,
    duplicate_ids,
    scaled,
    v1_request,
)
from tests.integration.conftest import wait_for_runs

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

VISIBILITY_TIMEOUT_S = 8
RUNS = scaled(6, 50)
KILLS = scaled(2, 6)


def last_event_t(run) -> float:
    return max((e["t"] for e in run.timeline), default=0.0)


@pytest.mark.timeout(scaled(240, 600))
def test_runs_survive_random_kill_9_of_their_workers_with_no_lost_run_and_no_duplicate_post(make_stack, figures):
    rng = random.Random(20261128)
    stack = make_stack(
        SimulatorConfig(
            speed=150,
            seed=17,
            guardrails=Guardrails(segment_jobs_per_day_per_sandbox=1000, segment_jobs_per_year_production=1000,
                                  adhoc_jobs_per_day_per_org=1000),
            # Slow answers keep steps inside the workers (and POSTs in flight) when the kills land.
            faults=FaultSettings(latency_ms=100, latency_jitter_ms=300),
        ),
        env={
            "QUOTA_SEGMENT_JOBS_PER_DAY": "1000",
            "QUOTA_SEGMENT_JOBS_PER_YEAR_PRODUCTION": "1000",
            "QUOTA_ADHOC_PER_DAY": "1000",
            "VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
            "TASK_TIME_LIMIT_S": "6",
        },
    )
    workers = [stack.start_worker(name="w1"), stack.start_worker(name="w2")]
    for w in workers:
        stack.wait_worker_ready(w)
    ledger = runtime.runtime().ledger

    # Half the runs start now, the rest between kills, so the kills land on every step of the chain.
    run_ids: list[str] = []
    batches = [RUNS // 2] + [0] * KILLS
    for i in range(RUNS - RUNS // 2):
        batches[1 + i % KILLS] += 1
    resume_delays: list[float] = []  # restart -> the interrupted run's next step event
    since_kill: list[float] = []  # kill -> the same event
    steps_hit: dict[str, int] = {}
    first_resumes: list[float] = []
    killed = 0
    for round_no in range(KILLS + 1):
        for _ in range(batches[round_no]):
            flow, audience = PAIRS[len(run_ids) % len(PAIRS)]
            run_ids.append(start_activation(v1_request(flow, audience)))
        if round_no == KILLS:
            break
        time.sleep(rng.uniform(0.5, 4.0))  # a random moment of the chain
        victims = [w for w in workers if rng.random() < 0.7] or [rng.choice(workers)]
        open_runs = [r for r in map(ledger.get, run_ids) if r and not r.terminal]
        open_before = {r.run_id: last_event_t(r) for r in open_runs}
        for r in open_runs:
            steps_hit[r.step] = steps_hit.get(r.step, 0) + 1
        killed_at = time.time()
        for w in victims:
            stack.kill_worker(w)
            workers.remove(w)
            killed += 1
        for _ in victims:
            w = stack.start_worker(name=f"w{len(stack.workers) + 1}")
            stack.wait_worker_ready(w)
            workers.append(w)
        restarted = time.time()
        # Resume time: from the restart to each interrupted run's first step event after it.
        pending = dict(open_before)
        deadline = time.monotonic() + VISIBILITY_TIMEOUT_S * 4
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                run = ledger.get(run_id)
                assert run is not None, f"run {run_id} vanished from the ledger"
                after = [e["t"] for e in run.timeline if e["t"] > restarted]
                if after or run.terminal:
                    resumed_at = min(after, default=restarted)
                    resume_delays.append(max(0.0, resumed_at - restarted))
                    since_kill.append(resumed_at - killed_at)
                    del pending[run_id]
            time.sleep(0.05)
        assert not pending, f"runs did not resume within {VISIBILITY_TIMEOUT_S * 4}s of a restart: {pending}"
        if open_before:
            first_resumes.append(min(resume_delays[-len(open_before) :]))

    runs = wait_for_runs(stack, run_ids, timeout_s=scaled(150, 400))
    statuses = {s: sum(r.status == s for r in runs) for s in ("succeeded", "failed", "cancelled")}
    lost = [(r.run_id, r.status, r.error) for r in runs if r.status != "succeeded"]
    posts = stack.posts()
    steps = {"segment job": SEGMENT_POST, "export job": EXPORT_POST, "ad-hoc run": ADHOC_POST}
    dup_posts = {name: posts.get(template, 0) - RUNS for name, template in steps.items()}

    shared = duplicate_ids(runs, segment=True, export=True)
    adopted = sum(e["event"] == "adopted" for r in runs for e in r.timeline)
    figures("runs", f"{RUNS} started, {statuses['succeeded']} succeeded, {len(lost)} lost")
    figures("kills", f"{killed} worker processes killed with SIGKILL in {KILLS} rounds")
    figures("duplicate POSTs accepted by AEP per step", dup_posts)
    figures("steps in flight at the kills", steps_hit)
    redelivered = sum(d >= VISIBILITY_TIMEOUT_S for d in since_kill)
    figures("interrupted runs that resumed only after the visibility timeout (redelivered)", redelivered)
    figures("AEP ids shared between runs", shared)
    figures("jobs adopted by look-before-create", adopted)
    if resume_delays:
        figures(
            "restart to resume (s)",
            f"first run {statistics.median(first_resumes):.1f} median / {max(first_resumes):.1f} max per restart; "
            f"every interrupted run {statistics.median(resume_delays):.1f} median / {max(resume_delays):.1f} max "
            f"(VISIBILITY_TIMEOUT_S={VISIBILITY_TIMEOUT_S}); kill to resume {max(since_kill):.1f} max",
        )

    assert not lost, lost
    assert all(v == 0 for v in dup_posts.values()), (dup_posts, posts)
    assert all(v == 0 for v in shared.values()), shared
    # A message that died with its worker comes back once it is older than the visibility timeout; the
    # sweep runs every tenth of it, and a new worker needs a few seconds to boot.
    assert max(resume_delays, default=0.0) <= VISIBILITY_TIMEOUT_S + 6, resume_delays

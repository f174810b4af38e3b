"""Fifty producers at once against a quota of twenty ad-hoc activations a day, two worker processes.

What it proves: exactly twenty activations reach AEP, none over, and the other thirty wait for the
next UTC window (``wait_until`` at or after the quota's ``reset_at``) instead of failing or calling AEP.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.config.settings import Settings
from aep_activator.tasks import runtime, start_activation
from aep_activator.tasks.producer import quota_usage
from aep_activator.workers import app
from tests.chaos.conftest import ADHOC_POST, PAIRS, v2_request
from tests.integration.conftest import wait_for_runs

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

PRODUCERS = 50
QUOTA = 20


def wait_out_midnight(run_s: float = 30.0) -> None:
    """The quota window is the UTC day: do not race the day boundary itself.

    A POST within ``QUOTA_EDGE_S`` of midnight counts in both days (AEP's clock may put it in either), so
    runs refused then wait for that edge to pass, not for the next day. Start this test neither within
    the edge plus its own run time before midnight nor within the edge after it (a CI run at 00:00:04
    once saw thirty runs waiting until 00:01, as designed, and failed the next-window check).
    """
    edge = Settings.model_fields["quota_edge_s"].default
    into_day = time.time() % 86400
    if into_day > 86400 - (edge + run_s):
        time.sleep(86400 - into_day + edge + 1)
    elif into_day < edge + 1:
        time.sleep(edge + 1 - into_day)


@pytest.mark.timeout(240)
def test_fifty_simultaneous_producers_activate_exactly_twenty_and_the_other_thirty_wait(make_stack, figures):
    wait_out_midnight()
    stack = make_stack(SimulatorConfig(speed=600, seed=41), env={"QUOTA_ADHOC_PER_DAY": str(QUOTA)})
    workers = [stack.start_worker(name="w1"), stack.start_worker(name="w2")]
    for w in workers:
        stack.wait_worker_ready(w)
    requests = [v2_request({PAIRS[i % len(PAIRS)][0]: [PAIRS[i % len(PAIRS)][1]]}) for i in range(PRODUCERS)]
    started = time.monotonic()
    # Each producer thread makes our app its current app: see the reproduction below for why it must.
    with ThreadPoolExecutor(max_workers=PRODUCERS, initializer=app.set_current) as pool:
        run_ids = list(pool.map(start_activation, requests))
    produce_s = time.monotonic() - started
    assert len(set(run_ids)) == PRODUCERS

    ledger = runtime.runtime().ledger
    deadline = time.monotonic() + 150
    while True:
        records = [ledger.get(r) for r in run_ids]
        done = [r for r in records if r and r.status == "succeeded"]
        # Waiting for the next window ("used up"), not in line for a slot of this one ("… runs ahead in line"):
        # a run in line still POSTs in this window, so counting it would stop the count one POST early.
        waiting = [r for r in records if r and r.status == "waiting" and "used up" in (r.waiting_reason or "")]
        if len(done) + len(waiting) == PRODUCERS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    settled_s = time.monotonic() - started
    time.sleep(1.0)  # room for an overshooting POST to show up
    (usage,) = [u for u in quota_usage() if u.name == "adhoc"]
    posts = stack.posts().get(ADHOC_POST, 0)
    rejected = [e for e in stack.journal("POST", ADHOC_POST) if e["status"] != 200]
    early = [r.run_id for r in waiting if r.wait_until is None or r.wait_until < usage.reset_at]
    figures("producers", f"{PRODUCERS} threads enqueued in {produce_s:.2f}s; settled after {settled_s:.1f}s")
    figures("activations accepted by AEP", f"{posts} (quota {QUOTA}, overshoot {max(0, posts - QUOTA)})")
    figures(
        "runs",
        f"{len(done)} succeeded, {len(waiting)} waiting for the next window, "
        f"{PRODUCERS - len(done) - len(waiting)} other",
    )
    figures("quota ledger", f"used {usage.used}, outcome pending {usage.pending}, remaining {usage.remaining}")
    figures("waiting runs due before reset_at", len(early))

    assert posts == QUOTA, posts
    assert not rejected, rejected  # nothing over quota was even tried (AEP's own 429) or collided (400)
    assert len(done) == QUOTA and len(waiting) == PRODUCERS - QUOTA, [
        (r.status, r.waiting_reason) for r in records if r
    ]
    assert (usage.used, usage.remaining) == (QUOTA, 0)
    assert not early, early


def test_a_run_started_from_a_producer_thread_reaches_the_workers(make_stack):
    """Reproduction: ``start_activation`` called from any thread but the one that imported ``workers``
    (a threaded web server, a thread pool) must enqueue on the activator's app.

    Celery's ``current_app`` is thread-local; ``tasks/producer.py`` builds the chain on it, and in a new
    thread it is Celery's empty fallback app, not ``workers.app``. The run is recorded and marked
    launched, but its chain goes to the fallback app's broker: the run stays ``queued`` forever.
    Fix (one line, ``workers/app.py`` ``create_app``): ``app.set_default()`` after creating the app.
    """
    stack = make_stack(SimulatorConfig(speed=600, seed=43))
    stack.wait_worker_ready(stack.start_worker())
    with ThreadPoolExecutor(max_workers=1) as pool:  # no initializer: a plain producer thread
        run_id = pool.submit(start_activation, v2_request({PAIRS[0][0]: [PAIRS[0][1]]})).result()
    (run,) = wait_for_runs(stack, [run_id], timeout_s=20)
    assert run.status == "succeeded", (run.status, run.step)

"""REDIS_WAIT_REPLICAS: a POST is sent only once its intent and quota slots reached the replicas."""

from __future__ import annotations

import time

import pytest
import redis

from aep_activator.aep.api import paths
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.testing import SimulatorHarness
from tests.chaos.conftest import PrivateRedis
from tests.stepkit import new_run, record, step_once, step_runtime

pytestmark = pytest.mark.integration

REQUEST = {"activation_info": {"b0780cb5-2bb7-4409-bf2c-c625ca818588": ["4afe34ae-8c98-4513-8a1d-67ccaa54bc05"]},
           "version": 2, "segment_job": False}  # fmt: skip


def test_a_post_waits_for_its_intent_to_reach_a_replica_and_is_sent_once_it_has() -> None:
    master = PrivateRedis(aof=False)
    master.start()
    replica = PrivateRedis(aof=False, extra=("--replicaof", "127.0.0.1", str(master.port)))
    try:
        with SimulatorHarness(SimulatorConfig(speed=600, seed=5)) as sim:
            rt = step_runtime(sim.base_url, master.url, "aeptest:wait:", redis_wait_replicas=1,
                              redis_wait_timeout_ms=1000)  # fmt: skip
            run_id = new_run(rt, REQUEST)
            waited = step_once(rt, run_id)  # no replica yet: WAIT answers 0
            assert waited.change is not None and waited.change.next is not None and waited.change.next.same_step
            assert "Redis replicas" in (record(rt, run_id).waiting_reason or "")
            assert record(rt, run_id).intents == {}, "the intent that was not sent is forgotten"
            assert not sim.server.ctx.journal.since(0) or all(
                e["template"] != paths.ADHOC_RUN for e in sim.server.ctx.journal.since(0)
            ), "nothing may be POSTed before the intent is replicated"
            replica.start()
            deadline = time.monotonic() + 10
            while redis.Redis(port=replica.port).info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not connect"
                time.sleep(0.1)
            # The replica acknowledges WAIT's GETACK within the timeout, unless a busy machine delays it past
            # that: then the step waits again, having sent nothing. It is sent once the intent is on the replica.
            for _ in range(5):
                rt.redis.hset(rt.keys.run(run_id), "lease_until", 0)  # the retry's delay, skipped
                done = step_once(rt, run_id)
                assert done.change is not None and done.change.next is not None
                if done.change.next.step == "poll_activation":
                    break
                assert "Redis replicas" in (record(rt, run_id).waiting_reason or ""), record(rt, run_id)
            assert done.change.next.step == "poll_activation", record(rt, run_id)
            posts = [e for e in sim.server.ctx.journal.since(0) if e["template"] == paths.ADHOC_RUN]
            assert [e["status"] for e in posts] == [200]
    finally:
        replica.stop()
        master.stop()

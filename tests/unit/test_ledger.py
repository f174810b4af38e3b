"""The run ledger and the delay queue: the Redis logic that makes steps safe to run twice.

Every contract runs against fakeredis (with Lua) and the real Redis server.
"""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
import redis

from aep_activator.aep.coordination.delays import RedisDelayQueue
from aep_activator.aep.coordination.runs import RunLedger


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["fakeredis", "redis"])
def client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        with fakeredis.FakeRedis() as fake:
            yield fake
    else:
        with redis.Redis.from_url(redis_url) as real:
            yield real


@pytest.fixture
def ledger(client: redis.Redis, key_prefix: str) -> RunLedger:
    return RunLedger(client, key_prefix, clock=Clock())


def test_a_new_run_is_queued_with_its_request_and_a_created_event(ledger: RunLedger) -> None:
    run_id, created = ledger.create({"version": 2}, started_by="cli")
    record = ledger.get(run_id)
    assert created and record is not None
    assert (record.status, record.request, record.started_by) == ("queued", {"version": 2}, "cli")
    assert [e["event"] for e in record.timeline] == ["created"]


def test_an_idempotency_key_returns_the_first_run_and_creates_no_second(ledger: RunLedger) -> None:
    first, created1 = ledger.create({}, started_by="a", idempotency_key="k")
    second, created2 = ledger.create({}, started_by="b", idempotency_key="k")
    assert (first, created1, created2) == (second, True, False)
    assert [r.run_id for r in ledger.recent(10)] == [first]


def test_the_fence_admits_later_steps_and_attempts_and_drops_earlier_ones(ledger: RunLedger) -> None:
    run_id, _ = ledger.create({}, started_by="t")
    assert ledger.enter(run_id, 1, 0) == "ok"
    assert ledger.enter(run_id, 1, 0) == "ok", "a redelivery of the same message must run again"
    assert ledger.enter(run_id, 1, 2) == "ok"
    assert ledger.enter(run_id, 1, 1) == "stale"
    assert ledger.enter(run_id, 0, 5) == "stale"
    assert ledger.enter(run_id, 2, 0) == "ok"


def test_the_fence_drops_every_message_of_a_finished_or_unknown_run(ledger: RunLedger) -> None:
    run_id, _ = ledger.create({}, started_by="t")
    assert ledger.finish_if_open(run_id, "cancelled", "by test")
    assert ledger.enter(run_id, 3, 0) == "terminal"
    assert ledger.enter("no-such-run", 0, 0) == "missing"


def test_a_run_finishes_once_even_when_a_cancel_races_the_last_step(ledger: RunLedger) -> None:
    run_id, _ = ledger.create({}, started_by="t")
    assert ledger.finish_if_open(run_id, "cancelled")
    assert not ledger.finish_if_open(run_id, "succeeded")
    record = ledger.get(run_id)
    assert record is not None and record.status == "cancelled"


def test_resetting_the_cursor_lets_a_resumed_step_run_again(ledger: RunLedger) -> None:
    run_id, _ = ledger.create({}, started_by="t")
    assert ledger.enter(run_id, 4, 7) == "ok"
    ledger.reset_cursor(3, run_id)
    assert ledger.enter(run_id, 4, 0) == "ok"


def test_update_stores_lists_as_json_and_none_deletes_a_field(ledger: RunLedger) -> None:
    run_id, _ = ledger.create({}, started_by="t")
    ledger.update(run_id, flow_runs=[{"run_id": "r1"}], waiting_reason="x", intent__segment_job=12.5)
    assert ledger.field(run_id, "intent:segment_job") == "12.5"
    ledger.update(run_id, waiting_reason=None)
    record = ledger.get(run_id)
    assert record is not None and record.flow_runs == [{"run_id": "r1"}] and record.waiting_reason is None


def test_a_delayed_task_is_popped_only_once_it_is_due(client: redis.Redis, key_prefix: str) -> None:
    clock = Clock(100.0)
    delays = RedisDelayQueue(client, key_prefix, lease_s=30, clock=clock)
    delays.schedule("m1", '{"task": "x"}', due_at=105.0)
    assert delays.pop_due() == []
    clock.t = 105.0
    assert delays.pop_due() == [("m1", '{"task": "x"}')]
    assert delays.pop_due() == [], "a leased member is not handed out twice"
    delays.ack("m1")
    clock.t = 1000.0
    assert delays.pop_due() == [] and delays.pending() == 0


def test_scheduling_the_same_member_twice_keeps_one_entry(client: redis.Redis, key_prefix: str) -> None:
    clock = Clock(0.0)
    delays = RedisDelayQueue(client, key_prefix, clock=clock)
    delays.schedule("m", "p1", 5.0)
    delays.schedule("m", "p2", 6.0)
    clock.t = 10.0
    assert delays.pop_due() == [("m", "p2")]


def test_a_member_whose_publisher_died_is_handed_out_again_after_its_lease(
    client: redis.Redis, key_prefix: str
) -> None:
    clock = Clock(0.0)
    delays = RedisDelayQueue(client, key_prefix, lease_s=10, clock=clock)
    delays.schedule("m", "p", 0.0)
    assert delays.pop_due() == [("m", "p")]  # ... and the pump crashes before ack
    clock.t = 9.0
    assert delays.pop_due() == []
    clock.t = 10.0
    assert delays.pop_due() == [("m", "p")]


def test_a_step_finishing_after_a_cancel_cannot_write_running_back(ledger: RunLedger) -> None:
    run_id, _ = ledger.create({}, started_by="t")
    assert ledger.finish_if_open(run_id, "cancelled")
    ledger.event(run_id, "poll_segment_job", "waiting", "still processing", status="running", wait_until=5)
    ledger.update(run_id, status="waiting")
    record = ledger.get(run_id)
    assert record is not None and record.status == "cancelled"

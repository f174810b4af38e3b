"""Contract tests of the run ledger and its carriers: what makes every step safe to run twice and every
open run reach an end. Each runs against fakeredis (with Lua) and the real Redis server; the clock is
injected into every script through ARGV.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import fakeredis
import pytest
import redis

from aep_activator.aep.coordination.carriers import Carriers
from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.quota import DailyWindow, QuotaLedger, QuotaSpec
from aep_activator.aep.coordination.runs import (
    TIMELINE_MAX,
    Change,
    Event,
    Failure,
    FailureKind,
    Next,
    RunLedger,
    RunStatus,
)
from aep_activator.devstack.embedded_redis import provision

T0 = 1_800_000_000.0
LEASE = 30.0
GRACE = 5.0


@dataclass
class Clock:
    t: float = T0

    def __call__(self) -> float:
        return self.t


@dataclass
class World:
    client: redis.Redis
    keys: Keys
    clock: Clock
    ledger: RunLedger
    carriers: Carriers
    quotas: QuotaLedger


@pytest.fixture(params=["fakeredis", "redis"])
def world(request: pytest.FixtureRequest, redis_url: str) -> Iterator[World]:
    if request.param == "fakeredis":
        client: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        prefix = "aeptest:"
    else:
        client = redis.Redis.from_url(redis_url)
        prefix = request.getfixturevalue("key_prefix")
    keys, clock = Keys(prefix), Clock()
    yield World(
        client, keys, clock, RunLedger(client, keys, ttl_s=3600, grace_s=GRACE, clock=clock),
        Carriers(client, keys, clock=clock), QuotaLedger(client, keys, edge_s=0),
    )  # fmt: skip
    client.close()


def new_run(w: World, run_id: str = "r1", key: str | None = None) -> None:
    w.ledger.create({"version": 2}, started_by="t", first_step="s1", run_id=run_id, idempotency_key=key)


def enter(w: World, run_id: str = "r1", step: str = "s1", seq: int = 1, token: str = "tok") -> str:
    return w.ledger.enter(run_id, step, seq, token=token, lease_s=LEASE).verdict


def move_on(w: World, run_id: str = "r1", token: str = "tok", step: str = "s2", delay: float = 0.0) -> int:
    left = w.ledger.leave(run_id, token, Change(next=Next(step, delay_s=delay, publish=delay == 0)))
    assert left.ok
    return left.seq


# --- creation -----------------------------------------------------------------------------------------


def test_a_new_run_is_queued_with_its_request_a_created_event_and_a_carrier(world: World) -> None:
    new_run(world)
    record = world.ledger.get("r1")
    assert record is not None
    assert (record.status, record.step, record.seq, record.request) == (RunStatus.QUEUED, "s1", 1, {"version": 2})
    assert [e["event"] for e in record.timeline] == ["created"]
    assert world.carriers.deadline("r1") == T0 + GRACE, "its wake-up's loss is covered by the watchdog"


def test_an_idempotency_key_returns_the_first_run_and_creates_no_second(world: World) -> None:
    first = world.ledger.create({}, started_by="a", first_step="s1", run_id="r1", idempotency_key="k")
    again = world.ledger.create({}, started_by="b", first_step="s1", run_id="r2", idempotency_key="k")
    assert (first.verdict, again.verdict, again.run_id) == ("created", "existing", "r1")
    assert not again.needs_wakeup and [r.run_id for r in world.ledger.recent(10)] == ["r1"]


def test_an_open_run_that_lost_its_carrier_is_relaunched_by_its_key_exactly_once(world: World) -> None:
    new_run(world, key="k")
    world.client.zrem(world.keys.carriers, "r1")  # e.g. a Redis restored from an older snapshot
    again = world.ledger.create({}, started_by="b", first_step="s1", run_id="r2", idempotency_key="k")
    third = world.ledger.create({}, started_by="c", first_step="s1", run_id="r3", idempotency_key="k")
    assert (again.verdict, again.run_id, again.seq) == ("relaunched", "r1", 2)
    assert third.verdict == "existing"
    assert world.carriers.deadline("r1") is not None


# --- the fence: enter -------------------------------------------------------------------------------


def test_only_a_message_with_the_current_step_and_seq_enters(world: World) -> None:
    new_run(world)
    assert enter(world, step="s2") == "stale"
    assert enter(world, seq=0) == "stale"
    assert enter(world) == "ok"
    seq = move_on(world)
    assert enter(world, step="s1", seq=1) == "stale", "a late duplicate of the finished step is dropped"
    assert enter(world, step="s2", seq=seq, token="t2") == "ok"


def test_a_second_copy_of_a_message_is_dropped_while_the_first_holds_the_lease(world: World) -> None:
    new_run(world)
    assert enter(world, token="a") == "ok"
    assert enter(world, token="b") == "busy"
    world.clock.t += LEASE + 0.1  # the holder died: its lease ran out
    assert enter(world, token="b") == "ok"
    record = world.ledger.get("r1", timeline=False)
    assert record is not None and record.errors == 0 and record.attempt == 0, "a busy drop counts nothing"


@pytest.mark.parametrize("at", [T0, T0 + 0.123456, 1_764_606_000.1])
def test_the_record_entering_returns_is_the_record_as_stored(world: World, at: float) -> None:
    # run_enter.lua patches what it wrote into the record it read instead of reading it again: each
    # field, a fractional lease end included, must read as Redis then holds it.
    world.clock.t = at
    new_run(world)
    entry = world.ledger.enter("r1", "s1", 1, token="tok", lease_s=LEASE + 0.1)
    assert entry.verdict == "ok" and entry.record is not None
    stored = world.ledger.get("r1", timeline=False)
    assert stored is not None
    assert entry.record == stored


def test_entering_moves_the_carrier_to_the_end_of_the_lease(world: World) -> None:
    new_run(world)
    enter(world)
    assert world.carriers.deadline("r1") == T0 + LEASE


def test_messages_of_a_finished_or_unknown_run_are_dropped(world: World) -> None:
    new_run(world)
    enter(world)
    assert world.ledger.leave("r1", "tok", Change(finish_status=RunStatus.SUCCEEDED)).ok
    assert enter(world, seq=2) == "terminal"
    assert enter(world, run_id="nope") == "missing"
    assert world.carriers.deadline("r1") is None


# --- leave ------------------------------------------------------------------------------------------


def test_an_execution_that_lost_its_lease_writes_nothing(world: World) -> None:
    new_run(world)
    enter(world, token="old")
    world.clock.t += LEASE + 1
    enter(world, token="new")
    left = world.ledger.leave("r1", "old", Change(set={"aep_status": "X"}, next=Next("s2", publish=True)))
    record = world.ledger.get("r1", timeline=False)
    assert not left.ok and record is not None and record.step == "s1" and record.aep_status is None


def test_a_wait_reschedules_the_same_step_with_a_new_seq_and_counts_the_attempt(world: World) -> None:
    new_run(world)
    enter(world)
    left = world.ledger.leave("r1", "tok", Change(next=Next("s1", delay_s=40, same_step=True)))
    record = world.ledger.get("r1", timeline=False)
    assert record is not None and (record.seq, record.attempt, record.carrier) == (left.seq, 1, "due")
    assert world.carriers.deadline("r1") == T0 + 40


def test_the_end_of_a_run_removes_its_carrier_and_frees_only_its_own_audience_locks(world: World) -> None:
    new_run(world)
    mine, theirs = world.keys.audience_lock("a"), world.keys.audience_lock("b")
    world.client.set(mine, "r1")
    world.client.set(theirs, "other-run")
    enter(world)
    failure = Failure(FailureKind.AEP_JOB_FAILED, "job ended FAILED", "s1")
    change = Change(finish_status=RunStatus.FAILED, failure=failure)
    assert world.ledger.leave("r1", "tok", change, lock_keys=[mine, theirs]).ok
    record = world.ledger.get("r1")
    assert record is not None and record.status is RunStatus.FAILED and record.failure == failure
    assert world.client.get(mine) is None and world.client.get(theirs) == b"other-run"
    assert world.carriers.deadline("r1") is None


def test_repeated_waits_for_the_same_thing_keep_one_timeline_row_with_a_count(world: World) -> None:
    new_run(world)
    seq, token = 1, "tok"
    for i in range(5):
        assert enter(world, seq=seq, token=f"{token}{i}") == "ok"
        ev = Event("s1", "waiting", f"audiences busy ({i})", key="wait:audience")
        seq = world.ledger.leave("r1", f"{token}{i}", Change(events=[ev], next=Next("s1", same_step=True))).seq
    waits = [e for e in (world.ledger.get("r1") or pytest.fail("no run")).timeline if e["event"] == "waiting"]
    assert len(waits) == 1 and waits[0]["n"] == 5 and waits[0]["detail"] == "audiences busy (4)"


def test_pinned_events_outlive_the_trimmed_timeline(world: World) -> None:
    new_run(world)
    seq = 1
    for i in range(TIMELINE_MAX + 20):
        assert enter(world, seq=seq, token=f"t{i}") == "ok"
        events = [Event("s1", "adopted", "job 1", pin=True)] if i == 3 else [Event("s1", "checked", str(i))]
        seq = world.ledger.leave("r1", f"t{i}", Change(events=events, next=Next("s1", same_step=True))).seq
    timeline = (world.ledger.get("r1") or pytest.fail("no run")).timeline
    assert [e["event"] for e in timeline][:2] == ["created", "adopted"]
    assert all("pin" not in e for e in timeline)
    assert world.client.llen(world.keys.timeline("r1")) == TIMELINE_MAX
    pinned = [json.loads(x)["event"] for x in world.client.lrange(world.keys.pinned("r1"), 0, -1)]
    assert pinned == ["created", "adopted"]  # the two the trim dropped, each once
    assert world.client.ttl(world.keys.pinned("r1")) > 3000


def test_a_run_whose_timeline_never_overflowed_has_no_pinned_list(world: World) -> None:
    new_run(world)
    assert enter(world) == "ok"
    world.ledger.leave("r1", "tok", Change(events=[Event("s1", "adopted", "job 1", pin=True)], next=Next("s2")))
    assert not world.client.exists(world.keys.pinned("r1"))
    timeline = (world.ledger.get("r1") or pytest.fail("no run")).timeline
    assert [e["event"] for e in timeline] == ["created", "started", "adopted"]
    assert all("pin" not in e for e in timeline)


def test_a_note_that_trims_the_timeline_keeps_its_pinned_events(world: World) -> None:
    new_run(world)
    world.ledger.note("r1", Event("s1", "cancel-failed", "first", pin=True))
    for i in range(TIMELINE_MAX):
        world.ledger.note("r1", Event("s1", "checked", str(i)))
    assert world.client.llen(world.keys.timeline("r1")) == TIMELINE_MAX
    timeline = (world.ledger.get("r1") or pytest.fail("no run")).timeline
    assert [e["event"] for e in timeline][:3] == ["created", "cancel-failed", "checked"]
    assert len(timeline) == TIMELINE_MAX + 2
    assert world.client.ttl(world.keys.pinned("r1")) > 3000


def test_a_repeated_pinned_event_keeps_its_first_occurrence_once(world: World) -> None:
    new_run(world)
    seq = 1
    for i in range(TIMELINE_MAX + 5):
        assert enter(world, seq=seq, token=f"t{i}") == "ok"
        ev = Event("s1", "outcome-unknown", f"try {i}", pin=True, key="unknown") if i < 3 else Event("s1", "x", str(i))
        seq = world.ledger.leave("r1", f"t{i}", Change(events=[ev], next=Next("s1", same_step=True))).seq
    pinned = [json.loads(x) for x in world.client.lrange(world.keys.pinned("r1"), 0, -1)]
    assert [(e["event"], e["detail"]) for e in pinned] == [("outcome-unknown", "try 0"), ("created", "by t")]


def test_every_write_keeps_the_record_alive_for_its_ttl(world: World) -> None:
    new_run(world)
    world.client.expire(world.keys.run("r1"), 10)
    enter(world)
    move_on(world)
    assert world.client.ttl(world.keys.run("r1")) > 3000


def test_an_open_run_keeps_at_least_90_percent_of_its_ttl_and_outlives_its_next_wait(world: World) -> None:
    # No pinned list: nothing pinned was trimmed.
    keys = [world.keys.run("r1"), world.keys.long("r1"), world.keys.timeline("r1")]

    def ttls() -> list[int]:
        return [int(world.client.ttl(k)) for k in keys]

    def set_ttls(seconds: int) -> None:
        for k in keys:
            world.client.expire(k, seconds)

    new_run(world)
    seq, step = 1, "s1"

    def step_once(ttl_before: int | None, delay: float = 0.0) -> None:
        nonlocal seq
        if ttl_before is None:
            for k in keys:
                world.client.persist(k)  # e.g. a record written by an older layout
        else:
            set_ttls(ttl_before)
        assert enter(world, step=step, seq=seq, token=f"t{seq}") == "ok"
        change = Change(next=Next(step, delay_s=delay, publish=delay == 0, same_step=True))
        left = world.ledger.leave("r1", f"t{seq}", change)
        assert left.ok
        seq = left.seq

    step_once(3300)  # over 90 % of the 3600 s left: nothing to do
    assert all(3240 <= t <= 3300 for t in ttls()), ttls()
    step_once(3200)  # under 90 %: every key gets its ttl again
    assert all(t > 3500 for t in ttls()), ttls()
    step_once(3500, delay=3300)  # the next wait would outlast 90 % of the ttl
    assert all(t > 3500 for t in ttls()), ttls()
    step_once(7200)  # ttl_s was lowered since the last write
    assert all(3500 < t <= 3600 for t in ttls()), ttls()
    step_once(None)
    assert all(t > 3500 for t in ttls()), ttls()
    set_ttls(3300)
    assert enter(world, step=step, seq=seq, token="last") == "ok"
    assert world.ledger.leave("r1", "last", Change(finish_status=RunStatus.SUCCEEDED)).ok
    assert all(t > 3500 for t in ttls()), "an ended run is kept ttl_s from its end"


# --- intent and quota -------------------------------------------------------------------------------


def quota(limit: int = 1) -> QuotaSpec:
    return QuotaSpec("adhoc", "org", limit, DailyWindow())


def intent(w: World, run_id: str = "r1", token: str = "tok", limit: int = 1) -> str:
    buckets = w.quotas.buckets([quota(limit)], w.clock.t)
    return w.ledger.intent(run_id, token, "s1", holder=run_id, buckets=buckets, edge_s=0).verdict


def test_an_intent_spends_its_slot_atomically_and_a_full_quota_writes_nothing(world: World) -> None:
    new_run(world, "r1")
    new_run(world, "r2")
    enter(world, "r1")
    enter(world, "r2", token="t2")
    assert intent(world, "r1") == "ok"
    assert intent(world, "r2", token="t2") == "quota"
    assert intent(world, "r1") == "exists", "no second intent while the first is unresolved"
    r2 = world.ledger.get("r2", timeline=False)
    assert r2 is not None and r2.intents == {}
    assert world.quotas.usage(quota(), world.clock.t).used == 1


def test_unintent_refunds_the_slot_on_proof_of_non_acceptance(world: World) -> None:
    new_run(world, "r1")
    new_run(world, "r2")
    enter(world, "r1")
    assert intent(world, "r1") == "ok"
    world.ledger.unintent("r1", "tok", "s1")
    enter(world, "r2", token="t2")
    assert intent(world, "r2", token="t2") == "ok"


def test_settling_a_post_keeps_its_slot_spent_but_no_longer_pending(world: World) -> None:
    new_run(world)
    enter(world)
    intent(world)
    assert world.quotas.usage(quota(), world.clock.t).pending == 1
    change = Change(set={"segment_job_id": "j1"}, delete=["intent:s1"], settle="s1", next=Next("s2", publish=True))
    assert world.ledger.leave("r1", "tok", change).ok
    usage = world.quotas.usage(quota(), world.clock.t)
    assert (usage.used, usage.pending) == (1, 0)


def test_an_execution_without_the_lease_cannot_record_an_intent(world: World) -> None:
    new_run(world)
    enter(world, token="a")
    assert intent(world, token="b") == "lost"


def test_once_a_cancel_began_the_step_holding_the_run_cannot_record_an_intent(world: World) -> None:
    new_run(world)
    enter(world)
    world.client.hset(world.keys.run("r1"), "cancel_requested", "cli")  # a cancel began, then waits
    assert intent(world) == "cancelled"


# --- cancel and resume --------------------------------------------------------------------------------


def test_cancel_waits_for_a_step_whose_post_may_be_in_flight_and_then_no_post_can_start(world: World) -> None:
    new_run(world)
    enter(world)
    assert intent(world) == "ok"  # ... and the POST is on the wire
    assert world.ledger.cancel("r1", "cli").verdict == "wait"
    change = Change(set={"segment_job_id": "j1"}, delete=["intent:s1"], next=Next("s2", publish=True))
    assert world.ledger.leave("r1", "tok", change).ok  # the step records AEP's answer
    result = world.ledger.cancel("r1", "cli")
    assert result.verdict == "cancelled" and not result.unresolved_intent
    assert enter(world, step="s2", seq=3) == "terminal"
    record = world.ledger.get("r1")
    assert record is not None and record.status is RunStatus.CANCELLED and record.segment_job_id == "j1"
    assert record.timeline[-1]["detail"] == "cancelled by cli"


def test_a_cancel_during_a_step_without_a_pending_post_ends_the_run_at_once_and_fences_the_step(
    world: World,
) -> None:
    new_run(world)
    enter(world)
    assert world.ledger.cancel("r1", "api:ops").verdict == "cancelled"
    assert intent(world) == "lost", "the cancel took the run from the step: it can neither record nor POST"
    assert not world.ledger.leave("r1", "tok", Change(next=Next("s2", publish=True))).ok


def test_resume_restarts_a_failed_run_with_a_new_carrier_that_fences_older_messages(world: World) -> None:
    new_run(world)
    enter(world)
    change = Change(finish_status=RunStatus.FAILED, failure=Failure(FailureKind.AEP_JOB_FAILED, "x", "s1"))
    world.ledger.leave("r1", "tok", change)
    resumed = world.ledger.resume("r1", "s1", forget=["segment_job_id"], new_generation=True, actor="cli")
    record = world.ledger.get("r1")
    assert record is not None and record.status is RunStatus.QUEUED and record.failure is None
    assert (record.generation, record.holder) == (1, "r1#1")
    assert enter(world, seq=1, token="x") == "stale" and enter(world, seq=resumed.seq, token="y") == "ok"
    with pytest.raises(ValueError, match="only a failed run"):
        world.ledger.resume("r1", "s1", forget=[], new_generation=False, actor="cli")


# --- layout 3: the record's long fields apart --------------------------------------------------------

BIG_REQUEST = {"version": 2, "note": "x" * 500}  # a request as long as a real one (about 500 B)


def test_a_waiting_runs_record_is_a_listpack_and_its_long_fields_live_apart(redis_url: str, key_prefix: str) -> None:
    client, keys = redis.Redis.from_url(redis_url), Keys(key_prefix)
    w = World(client, keys, Clock(), RunLedger(client, keys, ttl_s=3600, grace_s=GRACE, clock=Clock()),
              Carriers(client, keys), QuotaLedger(client, keys, edge_s=0))  # fmt: skip
    w.ledger.create(BIG_REQUEST, started_by="t", first_step="s1", run_id="r1")
    enter(w)
    assert intent(w) == "ok"
    wait = Change(set={"wait_until": T0 + 60, "waiting_reason": "segment job j is NEW", "wait_kind": "aep"},
                  delete=["intent:s1"], settle="s1", next=Next("s1", delay_s=60, same_step=True))  # fmt: skip
    assert w.ledger.leave("r1", "tok", wait).ok
    assert client.object("encoding", keys.run("r1")) == b"listpack"
    assert sorted(client.hkeys(keys.long("r1"))) == [b"request", b"spent:s1"]
    assert not {b"request", b"spent:s1"} & set(client.hkeys(keys.run("r1")))
    assert abs(client.ttl(keys.long("r1")) - client.ttl(keys.run("r1"))) <= 1
    record = w.ledger.get("r1")
    assert record is not None and record.request == BIG_REQUEST and set(record.spent) == {"s1"}
    entered = w.ledger.enter("r1", "s1", record.seq, token="t2", lease_s=LEASE).record
    assert entered is not None and entered.request == BIG_REQUEST and set(entered.spent) == {"s1"}
    client.close()


def as_layout_2(w: World, run_id: str = "r1") -> None:
    """Rewrite a record as layout 2 kept it: one hash with every field (an older producer, or a run in flight)."""
    long = w.client.hgetall(w.keys.long(run_id))
    if long:
        w.client.hset(w.keys.run(run_id), mapping=long)  # type: ignore[arg-type]
    w.client.delete(w.keys.long(run_id))
    w.client.hset(w.keys.run(run_id), "v", "2")


def test_a_layout_2_record_is_lifted_by_the_step_that_enters_it(world: World) -> None:
    world.ledger.create(BIG_REQUEST, started_by="t", first_step="s1", run_id="r1")
    as_layout_2(world)
    world.client.expire(world.keys.run("r1"), 1000)
    assert enter(world) == "ok"
    record = world.ledger.enter("r1", "s1", 1, token="tok", lease_s=LEASE)
    assert record.verdict == "busy", "it holds the lease it took"
    assert world.client.hget(world.keys.run("r1"), "v") == b"3"
    assert world.client.hget(world.keys.run("r1"), "request") is None
    assert json.loads(world.client.hget(world.keys.long("r1"), "request") or b"") == BIG_REQUEST
    assert 990 <= world.client.ttl(world.keys.long("r1")) <= 1000, "the long hash has the record's TTL"
    got = world.ledger.get("r1")
    assert got is not None and got.request == BIG_REQUEST and got.layout == "3"


def test_a_layout_2_record_is_read_as_it_is_and_lifted_by_the_watchdog(world: World) -> None:
    world.ledger.create(BIG_REQUEST, started_by="t", first_step="s1", run_id="r1")
    as_layout_2(world)
    got = world.ledger.get("r1")
    assert got is not None and got.request == BIG_REQUEST and got.layout == "2"
    world.clock.t += GRACE
    wakes = world.carriers.pop_due(grace_s=GRACE)
    assert [(x.run_id, x.step, x.kind) for x in wakes] == [("r1", "s1", "rewake")], "its carrier is kept"
    assert world.client.hget(world.keys.run("r1"), "v") == b"3"
    assert world.client.hkeys(world.keys.long("r1")) == [b"request"]


def test_a_layout_2_record_held_by_an_older_execution_is_not_lifted_under_it(world: World) -> None:
    new_run(world)
    assert enter(world) == "ok"  # the older release's execution holds the run ...
    as_layout_2(world)  # ... of its layout, and leaves it with its own script
    assert enter(world, token="new") == "busy"
    record = world.client.hgetall(world.keys.run("r1"))
    assert record[b"v"] == b"2" and b"request" in record
    world.clock.t += LEASE + 1  # its lease ran out: it died
    assert enter(world, token="new") == "ok"
    assert world.client.hget(world.keys.run("r1"), "v") == b"3"


def test_a_record_of_an_unknown_layout_is_left_alone(world: World) -> None:
    new_run(world)
    world.client.hset(world.keys.run("r1"), "v", "9")
    assert enter(world) == "layout"
    assert world.client.hget(world.keys.run("r1"), "v") == b"9"


def test_runs_admitted_milliseconds_apart_are_ranked_in_the_order_they_came(world: World) -> None:
    # A score near 1e11 printed by Lua's own number-to-text (14 digits) is rounded to 10 ms: the run
    # admitted 3 ms after another would not count it as ahead and be promised the same window.
    line, window = world.keys.line("adhoc", "org"), 86400
    admission = {"name": "adhoc", "line": line, "committed": world.keys.quota("adhoc", "org", 0), "limit": 1,
                 "window_end": T0 + window, "window_s": window}  # fmt: skip
    forecasts = []
    for i, dt in enumerate((0.230, 0.231, 0.234, 0.2341)):
        world.clock.t = T0 + dt
        created = world.ledger.create({}, started_by="t", first_step="s1", run_id=f"r{i}", lines=[admission])
        assert created.admission is not None
        forecasts.append((created.admission.verdict, created.admission.opens_at, created.admission.place))
    assert forecasts == [("now", 0, 0), ("waits", T0 + window, 1), ("waits", T0 + 2 * window, 1),
                         ("waits", T0 + 3 * window, 1)]  # fmt: skip
    assert [m.decode() for m in world.client.zrange(line, 0, -1)] == ["r0", "r1", "r2", "r3"]


def test_cancelling_a_layout_2_record_leaves_its_quota_lines(world: World) -> None:
    line = world.keys.line("adhoc", "org")
    admission = {"name": "adhoc", "line": line, "committed": world.keys.quota("adhoc", "org", 0), "limit": 5,
                 "window_end": T0 + 86400, "window_s": 86400}  # fmt: skip
    world.ledger.create(BIG_REQUEST, started_by="t", first_step="s1", run_id="r1", lines=[admission])
    assert world.client.zscore(line, "r1") is not None
    as_layout_2(world)
    assert world.ledger.cancel("r1", "cli").verdict == "cancelled"
    assert world.client.zscore(line, "r1") is None, "it left the line it joined"


def test_resuming_a_layout_2_record_forgets_its_spent_slots(world: World) -> None:
    new_run(world)
    enter(world)
    assert intent(world) == "ok"
    fail = Change(finish_status=RunStatus.FAILED, failure=Failure(FailureKind.AEP_JOB_FAILED, "x" * 80, "s1"))
    assert world.ledger.leave("r1", "tok", fail).ok
    as_layout_2(world)
    world.ledger.resume("r1", "s1", forget=["spent:s1"], new_generation=True, actor="cli")
    record = world.ledger.get("r1")
    assert record is not None and record.spent == {} and record.failure is None and record.request == {"version": 2}
    assert world.client.hget(world.keys.run("r1"), "v") == b"3"


# --- the watchdog -----------------------------------------------------------------------------------


def test_the_watchdog_hands_out_a_due_wait_once_per_grace_period(world: World) -> None:
    new_run(world)
    enter(world)
    world.ledger.leave("r1", "tok", Change(next=Next("s1", delay_s=10, same_step=True)))
    assert world.carriers.pop_due(grace_s=GRACE) == []
    world.clock.t += 10
    (wake,) = world.carriers.pop_due(grace_s=GRACE)
    assert (wake.run_id, wake.step, wake.kind) == ("r1", "s1", "wake")
    assert world.carriers.pop_due(grace_s=GRACE) == []


def test_a_lost_wakeup_is_published_again_after_the_grace_and_the_run_records_it(world: World) -> None:
    new_run(world)  # its wake-up message is lost (kombu's BRPOP -> unacked gap)
    world.clock.t += GRACE
    (wake,) = world.carriers.pop_due(grace_s=GRACE)
    assert (wake.kind, wake.step, wake.seq) == ("rewake", "s1", 1)
    record = world.ledger.get("r1")
    assert record is not None and record.recoveries == 1 and record.timeline[-1]["event"] == "recovered"


def test_while_the_queue_holds_a_backlog_a_woken_run_is_not_published_twice(world: World) -> None:
    new_run(world)
    world.client.rpush(world.keys.prefix + "queue", "a message of some other run")
    world.clock.t += GRACE
    assert world.carriers.pop_due(grace_s=GRACE, queue_keys=[world.keys.prefix + "queue"]) == []
    world.client.delete(world.keys.prefix + "queue")
    world.clock.t += GRACE
    (wake,) = world.carriers.pop_due(grace_s=GRACE, queue_keys=[world.keys.prefix + "queue"])
    assert wake.kind == "rewake"


def test_a_run_whose_execution_died_is_recovered_when_its_lease_ends(world: World) -> None:
    new_run(world)
    enter(world, token="dead")
    world.clock.t += LEASE - 1
    assert world.carriers.pop_due(grace_s=GRACE) == []
    world.clock.t += 1
    (wake,) = world.carriers.pop_due(grace_s=GRACE)
    assert (wake.kind, wake.seq) == ("recover", 1)
    assert enter(world, token="new") == "ok", "the recovered message takes the run at once"
    assert not world.ledger.leave("r1", "dead", Change(next=Next("s2", publish=True))).ok


def test_the_watchdog_forgets_carriers_of_finished_runs(world: World) -> None:
    new_run(world)
    world.client.hset(world.keys.run("r1"), "status", "succeeded")
    world.clock.t += GRACE
    assert world.carriers.pop_due(grace_s=GRACE) == [] and world.carriers.deadline("r1") is None


# --- the cost of one execution -------------------------------------------------------------------------

# Redis commands (as INFO commandstats counts them: the EVALSHA and every call the script makes) of one
# enter or leave, at most. A step costs its enter plus its leave; lower these when the scripts get leaner.
# Layout 3 added one to each enter (the HGETALL of the record's long hash) and to a leave that settles
# slots or ends the run (the HMGET of the spent slots or the lines there): the price of a listpack record.
MOST_COMMANDS = {
    "enter: the run's first step (queued -> running, started event)": 9,
    "enter: a new step's first attempt (started event)": 7,
    "enter: a poll's later attempt": 6,
    "leave: a step done (claim, event, publish the next)": 12,
    "leave: a poll's first wait (new timeline row)": 10,
    "leave: a poll waits again (its row counts one more)": 11,
    "leave: the last step ends the run (one audience lock)": 19,
}


@pytest.fixture(scope="module")
def counting_redis() -> Iterator[redis.Redis]:
    """A Redis server of its own: INFO commandstats counts every client's commands, so a shared one would not do."""
    with provision(None) as server, redis.Redis.from_url(server.url) as client:
        yield client


def command_counts(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"}


def test_one_execution_runs_at_most_so_many_redis_commands(counting_redis: redis.Redis) -> None:
    client, keys = counting_redis, Keys("aepcount:")
    ledger = RunLedger(client, keys, ttl_s=30 * 86400, grace_s=GRACE)  # Redis's clock: TIME counts too
    lock = keys.audience_lock("a")
    counted: dict[str, dict[str, int]] = {}

    def count(name: str, before: dict[str, int]) -> None:
        after = command_counts(client)
        counted[name] = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}

    def run(run_id: str) -> None:
        metrics = {"exec|s|done": 1, "step_ms|s": 1200, "step_le|s|2.5": 1, "req|/x|POST|201": 1}
        ledger.create({}, started_by="t", first_step="s1", run_id=run_id)
        before = command_counts(client)
        assert ledger.enter(run_id, "s1", 1, token="a", lease_s=LEASE).verdict == "ok"
        count("enter: the run's first step (queued -> running, started event)", before)
        done = Change(set={"segment_job_id": "j", "errors": 0}, delete=["intent:s1", "wait_until"],
                      events=[Event("s1", "posted", "j")], claims=[("segment", f"{run_id}-j")], settle="s1",
                      next=Next("s2", publish=True), metrics=metrics)  # fmt: skip
        before = command_counts(client)
        seq = ledger.leave(run_id, "a", done).seq
        count("leave: a step done (claim, event, publish the next)", before)
        before = command_counts(client)
        assert ledger.enter(run_id, "s2", seq, token="b", lease_s=LEASE).verdict == "ok"
        count("enter: a new step's first attempt (started event)", before)
        wait = Change(set={"wait_until": 1, "waiting_reason": "job is queued", "wait_kind": "aep", "errors": 0},
                      events=[Event("s2", "waiting", "job is queued", key="wait:aep")],
                      next=Next("s2", delay_s=30, same_step=True), metrics={"exec|s2|wait": 1, "req|/x|GET|200": 1})
        before = command_counts(client)
        seq = ledger.leave(run_id, "b", wait).seq
        count("leave: a poll's first wait (new timeline row)", before)
        before = command_counts(client)
        assert ledger.enter(run_id, "s2", seq, token="c", lease_s=LEASE).verdict == "ok"
        count("enter: a poll's later attempt", before)
        before = command_counts(client)
        seq = ledger.leave(run_id, "c", wait).seq
        count("leave: a poll waits again (its row counts one more)", before)
        assert ledger.enter(run_id, "s2", seq, token="d", lease_s=LEASE).verdict == "ok"
        client.set(lock, run_id)
        end = Change(delete=["wait_until"], events=[Event("s2", "succeeded", "done", pin=True)],
                     finish_status=RunStatus.SUCCEEDED, metrics=metrics)  # fmt: skip
        before = command_counts(client)
        assert ledger.leave(run_id, "d", end, lock_keys=[lock]).ok
        count("leave: the last step ends the run (one audience lock)", before)

    run("warm-up")  # loads the scripts (a first EVALSHA is refused and retried) and the metric fields
    run("r1")
    totals = {name: sum(c.values()) for name, c in counted.items()}
    over = {name: (totals[name], most, counted[name]) for name, most in MOST_COMMANDS.items() if totals[name] > most}
    assert not over, f"more Redis commands than before (name: (counted, most, by command)): {over}"
    waits = ledger.get("r1")
    assert waits is not None and waits.status is RunStatus.SUCCEEDED and waits.timeline[-2]["n"] == 2

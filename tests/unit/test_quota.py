"""Contract tests for RedisQuotaLedger, run against both fakeredis (with Lua) and a real Redis server.

The clock is injected, so crossing a UTC midnight or outliving a reservation costs no real time.
The concurrency test needs real Redis: fakeredis lives in one process.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event

import fakeredis
import pytest
import redis

from aep_activator.aep.coordination.quota import RedisQuotaLedger

MIDNIGHT = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp())  # a UTC midnight, epoch s
NAME, ORG = "adhoc_activation", "ABC123@AdobeOrg"


@dataclass
class FakeClock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    client: redis.Redis
    prefix: str


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Backend]:
    if request.param == "fakeredis":
        client: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        prefix = "aeptest:"
    else:
        client = redis.Redis.from_url(redis_url)
        prefix = request.getfixturevalue("key_prefix")
    yield Backend(client, prefix)
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MIDNIGHT + 12 * 3600.0)


@pytest.fixture
def ledger(backend: Backend, clock: FakeClock) -> RedisQuotaLedger:
    return RedisQuotaLedger(backend.client, backend.prefix, clock=clock)


def test_reserves_succeed_up_to_the_limit_and_then_are_refused(ledger: RedisQuotaLedger) -> None:
    results = [ledger.reserve(NAME, ORG, 3, f"run-{i}", ttl_s=600) for i in range(5)]
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert not any(r.already for r in results)
    assert results[-1].usage.reserved == 3
    assert results[-1].usage.remaining == 0


def test_usage_reports_committed_live_reserved_remaining_and_the_exact_reset(
    ledger: RedisQuotaLedger,
) -> None:
    for i in range(3):
        ledger.reserve(NAME, ORG, 20, f"run-{i}", ttl_s=600)
    ledger.commit(NAME, ORG, "run-0", MIDNIGHT)
    usage = ledger.usage(NAME, ORG, 20)
    assert (usage.name, usage.scope, usage.limit) == (NAME, ORG, 20)
    assert (usage.used, usage.reserved, usage.remaining) == (1, 2, 17)
    assert usage.window_start == MIDNIGHT
    assert usage.reset_at == MIDNIGHT + 86400


def test_a_holder_that_reserves_twice_gets_one_slot_and_already_true(ledger: RedisQuotaLedger) -> None:
    first = ledger.reserve(NAME, ORG, 2, "run-a", ttl_s=600)
    again = ledger.reserve(NAME, ORG, 2, "run-a", ttl_s=600)
    assert (first.ok, first.already) == (True, False)
    assert (again.ok, again.already) == (True, True)
    assert again.usage.reserved == 1


def test_re_reserving_renews_the_lease_of_the_existing_reservation(
    ledger: RedisQuotaLedger, clock: FakeClock
) -> None:
    ledger.reserve(NAME, ORG, 1, "run-a", ttl_s=10)
    clock.now += 8
    ledger.reserve(NAME, ORG, 1, "run-a", ttl_s=10)
    clock.now += 8  # 16 s after the first reserve, 8 s after the renewal
    assert ledger.reserve(NAME, ORG, 1, "run-b", ttl_s=10).ok is False
    assert ledger.usage(NAME, ORG, 1).reserved == 1


def test_committing_twice_counts_once_and_a_committed_holder_re_reserves_as_already(
    ledger: RedisQuotaLedger,
) -> None:
    r = ledger.reserve(NAME, ORG, 2, "run-a", ttl_s=600)
    ledger.commit(NAME, ORG, "run-a", r.window_start)
    ledger.commit(NAME, ORG, "run-a", r.window_start)
    again = ledger.reserve(NAME, ORG, 2, "run-a", ttl_s=600)
    assert (again.ok, again.already) == (True, True)
    assert (again.usage.used, again.usage.reserved) == (1, 0)


def test_a_refund_frees_the_slot_for_another_holder(ledger: RedisQuotaLedger) -> None:
    a = ledger.reserve(NAME, ORG, 1, "run-a", ttl_s=600)
    assert ledger.reserve(NAME, ORG, 1, "run-b", ttl_s=600).ok is False
    ledger.refund(NAME, ORG, "run-a", a.window_start)
    ledger.refund(NAME, ORG, "run-a", a.window_start)  # idempotent
    assert ledger.reserve(NAME, ORG, 1, "run-b", ttl_s=600).ok is True


def test_a_refund_never_removes_a_commit(ledger: RedisQuotaLedger) -> None:
    a = ledger.reserve(NAME, ORG, 1, "run-a", ttl_s=600)
    ledger.commit(NAME, ORG, "run-a", a.window_start)
    ledger.refund(NAME, ORG, "run-a", a.window_start)
    assert ledger.usage(NAME, ORG, 1).used == 1
    assert ledger.reserve(NAME, ORG, 1, "run-b", ttl_s=600).ok is False


def test_a_crashed_holders_reservation_lapses_after_its_ttl(
    ledger: RedisQuotaLedger, clock: FakeClock
) -> None:
    ledger.reserve(NAME, ORG, 1, "crashed", ttl_s=30)
    clock.now += 29.9
    assert ledger.reserve(NAME, ORG, 1, "run-b", ttl_s=30).ok is False
    clock.now += 0.1  # expiry is exclusive: at exactly now + ttl the lease is gone
    assert ledger.usage(NAME, ORG, 1).reserved == 0
    assert ledger.reserve(NAME, ORG, 1, "run-b", ttl_s=30).ok is True


def test_a_commit_after_the_reservation_expired_is_still_recorded_even_above_the_limit(
    ledger: RedisQuotaLedger, clock: FakeClock
) -> None:
    slow = ledger.reserve(NAME, ORG, 1, "slow", ttl_s=10)
    clock.now += 11
    assert ledger.reserve(NAME, ORG, 1, "fast", ttl_s=10).ok is True
    ledger.commit(NAME, ORG, "slow", slow.window_start)  # AEP accepted slow's POST: reality wins
    ledger.commit(NAME, ORG, "fast", slow.window_start)
    usage = ledger.usage(NAME, ORG, 1)
    assert (usage.used, usage.reserved, usage.remaining) == (2, 0, 0)
    assert ledger.reserve(NAME, ORG, 1, "next", ttl_s=10).ok is False


def test_a_limit_of_zero_or_less_refuses_every_reservation(ledger: RedisQuotaLedger) -> None:
    for limit in (0, -1):
        r = ledger.reserve(NAME, ORG, limit, "run-a", ttl_s=600)
        assert (r.ok, r.usage.reserved, r.usage.remaining) == (False, 0, 0)


def test_the_window_rolls_over_at_utc_midnight_with_an_exact_reset(backend: Backend) -> None:
    clock = FakeClock(MIDNIGHT - 1.5)  # 23:59:58.5 UTC the day before
    ledger = RedisQuotaLedger(backend.client, backend.prefix, clock=clock)
    first = ledger.reserve("segment_job", "prod", 2, "job-1", ttl_s=3600)
    ledger.reserve("segment_job", "prod", 2, "job-2", ttl_s=3600)
    refused = ledger.reserve("segment_job", "prod", 2, "job-3", ttl_s=3600)
    assert refused.ok is False
    assert refused.usage.reset_at == float(MIDNIGHT)
    assert first.window_start == MIDNIGHT - 86400

    clock.now = float(MIDNIGHT)
    fresh = ledger.reserve("segment_job", "prod", 2, "job-3", ttl_s=3600)
    assert (fresh.ok, fresh.window_start, fresh.usage.reserved) == (True, MIDNIGHT, 1)
    assert fresh.usage.reset_at == float(MIDNIGHT + 86400)

    # Yesterday's run, committed after midnight, lands in yesterday's window only.
    ledger.commit("segment_job", "prod", "job-1", first.window_start)
    assert ledger.usage("segment_job", "prod", 2).used == 0
    clock.now = MIDNIGHT - 1.0
    assert ledger.usage("segment_job", "prod", 2).used == 1


def test_a_short_window_is_aligned_to_multiples_of_window_s(backend: Backend) -> None:
    clock = FakeClock(1_000_000_007.25)
    ledger = RedisQuotaLedger(backend.client, backend.prefix, window_s=60, clock=clock)
    r = ledger.reserve(NAME, ORG, 1, "run-a", ttl_s=5)
    assert r.window_start == 999_999_960
    assert r.usage.reset_at == 1_000_000_020.0
    with pytest.raises(ValueError, match="not aligned"):
        ledger.commit(NAME, ORG, "run-a", r.window_start + 1)


def test_scopes_and_names_containing_at_signs_and_colons_never_share_a_quota(
    ledger: RedisQuotaLedger, backend: Backend
) -> None:
    assert ledger.reserve("a:b", "c", 1, "run-1", ttl_s=600).ok
    assert ledger.reserve("a", "b:c", 1, "run-2", ttl_s=600).ok
    assert ledger.reserve(NAME, "ORG@AdobeOrg:x", 1, "run-3", ttl_s=600).ok
    assert ledger.reserve(NAME, "ORG@AdobeOrg", 1, "run-4", ttl_s=600).ok
    assert ledger.usage(NAME, "ORG@AdobeOrg", 1).reserved == 1
    key = f"{backend.prefix}quota:{NAME}:ORG%40AdobeOrg:{MIDNIGHT}:reserved"
    assert backend.client.zscore(key, "run-4") is not None


def test_keys_expire_one_window_after_their_window_ends(backend: Backend) -> None:
    clock = FakeClock(MIDNIGHT + 0.75)
    ledger = RedisQuotaLedger(backend.client, backend.prefix, window_s=1, clock=clock)
    r = ledger.reserve(NAME, ORG, 2, "run-a", ttl_s=60)
    ledger.reserve(NAME, ORG, 2, "run-b", ttl_s=60)
    ledger.commit(NAME, ORG, "run-a", r.window_start)
    keys = [
        f"{backend.prefix}quota:{NAME}:ABC123%40AdobeOrg:{MIDNIGHT}:{kind}"
        for kind in ("committed", "reserved")
    ]
    for key in keys:
        assert 1000 < backend.client.pttl(key) <= 1250  # window end + one window - now = 1.25 s
    time.sleep(1.35)  # real time: the key TTL is Redis's own
    assert backend.client.exists(*keys) == 0


def test_invalid_arguments_are_rejected_before_touching_redis(ledger: RedisQuotaLedger) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        ledger.reserve(NAME, ORG, 1, "run-a", ttl_s=0)
    with pytest.raises(ValueError, match="holder"):
        ledger.reserve(NAME, ORG, 1, "", ttl_s=10)


# Real Redis only: many processes racing for the last slots.

WORKERS, ATTEMPTS, LIMIT = 8, 25, 20


def _reserve_many(
    url: str, prefix: str, worker: int, commit: bool, go: Event, out: multiprocessing.Queue[int]
) -> None:
    client = redis.Redis.from_url(url)
    ledger = RedisQuotaLedger(client, prefix)
    go.wait()
    ok = 0
    for attempt in range(ATTEMPTS):
        r = ledger.reserve(NAME, ORG, LIMIT, f"w{worker}-{attempt}", ttl_s=600)
        if r.ok:
            ok += 1
            if commit:
                ledger.commit(NAME, ORG, r.holder, r.window_start)
    client.close()
    out.put(ok)


@pytest.mark.parametrize("commit", [False, True], ids=["reserve-only", "reserve-then-commit"])
def test_eight_processes_racing_for_a_limit_of_twenty_get_exactly_twenty(
    redis_url: str, key_prefix: str, commit: bool
) -> None:
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_reserve_many, args=(redis_url, key_prefix, w, commit, go, out))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    go.set()
    granted = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    out.close()
    out.join_thread()

    client = redis.Redis.from_url(redis_url)
    usage = RedisQuotaLedger(client, key_prefix).usage(NAME, ORG, LIMIT)
    client.close()
    assert granted == LIMIT
    assert usage.used + usage.reserved == LIMIT
    assert usage.used == (LIMIT if commit else 0)

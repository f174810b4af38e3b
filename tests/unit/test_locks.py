"""Contract tests for AudienceLocks, run against both fakeredis (with Lua) and a real Redis server.

Lock TTLs are Redis's own (PX), so expiry is tested with short real TTLs. The race test needs
real Redis: fakeredis lives in one process.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event

import fakeredis
import pytest
import redis

from aep_activator.aep.coordination.locks import AudienceLocks


@pytest.fixture(params=["fakeredis", "redis"])
def client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        c: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    # key_prefix cleans the real server up afterwards; a fresh FakeServer needs no cleanup.
    return str(request.getfixturevalue("key_prefix"))


@pytest.fixture
def locks(client: redis.Redis, prefix: str) -> AudienceLocks:
    return AudienceLocks(client, prefix)


def test_acquiring_free_audiences_locks_all_of_them_for_the_owner(locks: AudienceLocks) -> None:
    result = locks.acquire(["aud-1", "aud-2"], "run-a", ttl_s=60)
    assert (result.ok, result.conflicts) == (True, {})
    assert locks.owners(["aud-1", "aud-2", "aud-3"]) == {"aud-1": "run-a", "aud-2": "run-a", "aud-3": None}


def test_an_overlapping_set_gets_nothing_and_learns_who_holds_the_overlap(locks: AudienceLocks) -> None:
    locks.acquire(["aud-1", "aud-2"], "run-a", ttl_s=60)
    result = locks.acquire(["aud-2", "aud-3"], "run-b", ttl_s=60)
    assert (result.ok, result.conflicts) == (False, {"aud-2": "run-a"})
    assert locks.owners(["aud-3"]) == {"aud-3": None}  # all-or-nothing: aud-3 was not taken


def test_the_same_owner_can_acquire_again_and_its_ttl_is_reset(
    locks: AudienceLocks, client: redis.Redis, prefix: str
) -> None:
    locks.acquire(["aud-1"], "run-a", ttl_s=1)
    result = locks.acquire(["aud-1", "aud-2"], "run-a", ttl_s=60)
    assert result.ok
    assert client.pttl(f"{prefix}lock:audience:aud-1") > 30_000


def test_release_by_a_non_owner_is_a_no_op(locks: AudienceLocks) -> None:
    locks.acquire(["aud-1"], "run-a", ttl_s=60)
    locks.release(["aud-1"], "run-b")
    assert locks.owners(["aud-1"]) == {"aud-1": "run-a"}


def test_release_by_the_owner_frees_only_its_own_audiences(locks: AudienceLocks) -> None:
    locks.acquire(["aud-1"], "run-a", ttl_s=60)
    locks.acquire(["aud-2"], "run-b", ttl_s=60)
    locks.release(["aud-1", "aud-2"], "run-a")
    locks.release(["aud-1", "aud-2"], "run-a")  # idempotent
    assert locks.owners(["aud-1", "aud-2"]) == {"aud-1": None, "aud-2": "run-b"}
    assert locks.acquire(["aud-1"], "run-c", ttl_s=60).ok


def test_a_lock_expires_after_its_ttl_so_a_crashed_run_frees_the_audience(locks: AudienceLocks) -> None:
    locks.acquire(["aud-1"], "crashed", ttl_s=0.1)
    time.sleep(0.25)
    assert locks.owners(["aud-1"]) == {"aud-1": None}
    assert locks.acquire(["aud-1"], "run-b", ttl_s=60).ok


def test_refresh_extends_held_locks_and_reports_a_lost_one_without_taking_it(
    locks: AudienceLocks, client: redis.Redis, prefix: str
) -> None:
    locks.acquire(["aud-1", "aud-2"], "run-a", ttl_s=1)
    assert locks.refresh(["aud-1", "aud-2"], "run-a", ttl_s=60) is True
    assert client.pttl(f"{prefix}lock:audience:aud-2") > 30_000

    locks.release(["aud-2"], "run-a")
    locks.acquire(["aud-2"], "run-b", ttl_s=60)
    assert locks.refresh(["aud-1", "aud-2", "aud-3"], "run-a", ttl_s=60) is False
    assert locks.owners(["aud-1", "aud-2", "aud-3"]) == {"aud-1": "run-a", "aud-2": "run-b", "aud-3": None}


def test_audience_ids_with_colons_are_distinct_keys_under_the_documented_layout(
    locks: AudienceLocks, client: redis.Redis, prefix: str
) -> None:
    assert locks.acquire(["a:b", "a"], "run-a", ttl_s=60).ok
    assert client.get(f"{prefix}lock:audience:a:b") == b"run-a"
    assert locks.owners(["a:b", "a", "b"]) == {"a:b": "run-a", "a": "run-a", "b": None}


def test_empty_or_duplicated_audience_lists_are_handled(locks: AudienceLocks) -> None:
    assert locks.acquire([], "run-a", ttl_s=60).ok
    assert locks.acquire(["aud-1", "aud-1"], "run-a", ttl_s=60).ok
    assert locks.refresh([], "run-a", ttl_s=60) is True
    assert locks.owners([]) == {}


def test_invalid_arguments_are_rejected(locks: AudienceLocks) -> None:
    with pytest.raises(TypeError):
        locks.acquire("aud-1", "run-a", ttl_s=60)
    with pytest.raises(ValueError, match="ttl_s"):
        locks.acquire(["aud-1"], "run-a", ttl_s=0)
    with pytest.raises(ValueError, match="owner"):
        locks.acquire(["aud-1"], "", ttl_s=60)


# Real Redis only: several runs racing for the same audiences.

RACERS = 8
AUDIENCES = ["aud-1", "aud-2", "aud-3", "aud-4"]


def _race(url: str, prefix: str, racer: int, go: Event, out: multiprocessing.Queue[tuple[str, bool]]) -> None:
    client = redis.Redis.from_url(url)
    locks = AudienceLocks(client, prefix)
    # Each racer names the audiences in a different order: all-or-nothing must not depend on it.
    shift = racer % len(AUDIENCES)
    order = AUDIENCES[shift:] + AUDIENCES[:shift]
    go.wait()
    result = locks.acquire(order, f"run-{racer}", ttl_s=60)
    client.close()
    out.put((f"run-{racer}", result.ok))


def test_several_processes_racing_for_the_same_audiences_yield_exactly_one_winner(
    redis_url: str, key_prefix: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(redis_url, key_prefix, r, go, out)) for r in range(RACERS)]
    for p in procs:
        p.start()
    go.set()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    out.close()
    out.join_thread()

    winners = [owner for owner, ok in results.items() if ok]
    assert len(winners) == 1
    client = redis.Redis.from_url(redis_url)
    owners = AudienceLocks(client, key_prefix).owners(AUDIENCES)
    client.close()
    assert set(owners.values()) == {winners[0]}

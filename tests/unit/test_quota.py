"""Contract tests of the quota ledger, against fakeredis (with Lua) and a real Redis server.

A slot is spent when its POST is sent and only ever given back on proof of non-acceptance: nothing
lapses with time, so a worker that dies between AEP's answer and recording it cannot let a second POST
through. The clock is injected through ARGV, so crossing a UTC midnight costs no real time.
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

from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.quota import (
    ClockSkew,
    DailyWindow,
    QuotaLedger,
    QuotaSpec,
    YearlyWindow,
    pending_key,
)

MIDNIGHT = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp())  # a UTC midnight, epoch s
NOON = MIDNIGHT + 12 * 3600.0
ORG = "ABC123@AdobeOrg"


def spec(limit: int = 20, *, name: str = "adhoc", scope: str = ORG, window: object = None) -> QuotaSpec:
    return QuotaSpec(name, scope, limit, window or DailyWindow())  # type: ignore[arg-type]


@dataclass
class Backend:
    client: redis.Redis
    keys: Keys


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Backend]:
    if request.param == "fakeredis":
        client: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        prefix = "aeptest:"
    else:
        client = redis.Redis.from_url(redis_url)
        prefix = request.getfixturevalue("key_prefix")
    yield Backend(client, Keys(prefix))
    client.close()


@pytest.fixture
def ledger(backend: Backend) -> QuotaLedger:
    return QuotaLedger(backend.client, backend.keys, edge_s=60)


def spend(ledger: QuotaLedger, holder: str, limit: int = 20, now: float = NOON, **kw: object) -> bool:
    s = spec(limit, **kw)  # type: ignore[arg-type]
    return ledger.spend(holder, ledger.buckets([s], now), now=now).ok


def test_spends_succeed_up_to_the_limit_and_then_are_refused_writing_nothing(ledger: QuotaLedger) -> None:
    assert [spend(ledger, f"run-{i}", 3) for i in range(5)] == [True, True, True, False, False]
    usage = ledger.usage(spec(3), NOON)
    assert (usage.used, usage.pending, usage.remaining) == (3, 3, 0)


def test_a_refused_spend_names_the_full_bucket_and_its_count(ledger: QuotaLedger) -> None:
    spend(ledger, "a", 1)
    result = ledger.spend("b", ledger.buckets([spec(1)], NOON), now=NOON)
    assert not result.ok and result.bucket is not None and result.used == 1
    assert (result.bucket.start, result.bucket.end) == (MIDNIGHT, MIDNIGHT + 86400)


def test_usage_reports_used_pending_remaining_and_the_exact_reset(ledger: QuotaLedger) -> None:
    for i in range(3):
        spend(ledger, f"run-{i}")
    usage = ledger.usage(spec(), NOON)
    assert (usage.name, usage.scope, usage.limit) == ("adhoc", ORG, 20)
    assert (usage.used, usage.remaining) == (3, 17)
    assert (usage.window_start, usage.reset_at) == (MIDNIGHT, MIDNIGHT + 86400)


def test_a_holder_that_spends_twice_takes_one_slot(ledger: QuotaLedger) -> None:
    assert spend(ledger, "run-a", 2) and spend(ledger, "run-a", 2)
    assert ledger.usage(spec(2), NOON).used == 1


def test_a_spent_slot_never_lapses_however_long_its_post_takes_to_be_settled(ledger: QuotaLedger) -> None:
    # The overshoot the old 900 s reservation allowed: the worker dies after AEP's 200, hours pass.
    assert spend(ledger, "slow", 1, now=NOON)
    assert not spend(ledger, "fast", 1, now=NOON + 6 * 3600), "a second POST would overshoot a quota of 1"


def test_a_refund_frees_the_slot_and_is_idempotent(ledger: QuotaLedger) -> None:
    spend(ledger, "run-a", 1)
    keys = [b.key for b in ledger.buckets([spec(1)], NOON)]
    ledger.refund("run-a", keys)
    ledger.refund("run-a", keys)
    assert spend(ledger, "run-b", 1)
    assert ledger.usage(spec(1), NOON).used == 1


def test_a_limit_of_zero_or_less_refuses_every_spend(ledger: QuotaLedger) -> None:
    assert not spend(ledger, "run-a", 0) and not spend(ledger, "run-a", -1)


def test_the_window_rolls_over_at_utc_midnight_exactly(ledger: QuotaLedger) -> None:
    ledger.edge_s = 0
    yesterday = MIDNIGHT - 3600.0
    assert spend(ledger, "a", 1, now=yesterday)
    assert not spend(ledger, "b", 1, now=MIDNIGHT - 0.001)
    assert spend(ledger, "b", 1, now=MIDNIGHT)
    assert ledger.usage(spec(1), yesterday).used == 1 and ledger.usage(spec(1), MIDNIGHT).used == 1


def test_a_spend_near_midnight_counts_in_both_days_aep_might_count_it_in(ledger: QuotaLedger) -> None:
    just_before = MIDNIGHT - 30.0  # within the 60 s edge: AEP's clock may already say tomorrow
    buckets = ledger.buckets([spec(2)], just_before)
    assert [b.start for b in buckets] == [MIDNIGHT - 86400, MIDNIGHT]
    assert ledger.spend("a", buckets, now=just_before).ok
    assert ledger.usage(spec(2), MIDNIGHT - 3600).used == 1
    assert ledger.usage(spec(2), MIDNIGHT + 3600).used == 1
    assert [b.start for b in ledger.buckets([spec(2)], NOON)] == [MIDNIGHT], "far from midnight: one window"


def test_buckets_that_do_not_contain_the_servers_time_are_refused_as_clock_skew(ledger: QuotaLedger) -> None:
    stale = ledger.buckets([spec()], NOON - 86400)  # computed by a host whose clock is a day behind
    with pytest.raises(ClockSkew):
        ledger.spend("a", stale, now=NOON)
    assert ledger.usage(spec(), NOON).used == 0


def test_a_yearly_window_opens_on_its_anniversary_at_midnight_utc() -> None:
    window = YearlyWindow(month=4, day=15)
    start, end = window.containing(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 4, 15, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2027, 4, 15, tzinfo=UTC)
    start, _ = window.containing(datetime(2027, 4, 14, 23, 59, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 4, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="every year"):
        YearlyWindow(month=2, day=29)


def test_a_daily_and_a_yearly_slot_are_spent_together_or_not_at_all(ledger: QuotaLedger) -> None:
    daily, yearly = spec(2, name="segment_jobs"), spec(1, name="segment_jobs_yearly", window=YearlyWindow())
    assert ledger.spend("a", ledger.buckets([daily, yearly], NOON), now=NOON).ok
    refused = ledger.spend("b", ledger.buckets([daily, yearly], NOON), now=NOON)
    assert not refused.ok and refused.bucket is not None and refused.bucket.spec.name == "segment_jobs_yearly"
    assert ledger.usage(daily, NOON).used == 1, "the daily slot is not taken when the yearly one is refused"


def test_scopes_and_names_containing_at_signs_and_colons_never_share_a_quota(
    ledger: QuotaLedger, backend: Backend
) -> None:
    assert spend(ledger, "r1", 1, name="a:b", scope="c")
    assert spend(ledger, "r2", 1, name="a", scope="b:c")
    assert spend(ledger, "r3", 1, scope="ORG@AdobeOrg:x")
    assert spend(ledger, "r4", 1, scope="ORG@AdobeOrg")
    key = f"{backend.keys.prefix}quota:adhoc:ORG%40AdobeOrg:{MIDNIGHT}:committed"
    assert backend.client.sismember(key, "r4")


def test_keys_expire_one_window_after_their_window_ends(backend: Backend) -> None:
    ledger = QuotaLedger(backend.client, backend.keys, edge_s=0)
    short = spec(2, window=DailyWindow(2))
    now = MIDNIGHT + 0.5
    assert ledger.spend("a", ledger.buckets([short], now), now=now).ok
    key = ledger.buckets([short], now)[0].key
    for k in (key, pending_key(key)):
        assert 1000 <= backend.client.pttl(k) <= 3500  # window end + one window - now, at least 1 s
    time.sleep(3.6)  # real time: the key TTL is Redis's own
    assert backend.client.exists(key, pending_key(key)) == 0


def test_an_empty_holder_is_rejected_before_touching_redis(ledger: QuotaLedger) -> None:
    with pytest.raises(ValueError, match="holder"):
        ledger.spend("", ledger.buckets([spec()], NOON), now=NOON)


# Real Redis only: many processes racing for the last slots.

WORKERS, ATTEMPTS, LIMIT = 8, 25, 20


def _spend_many(url: str, prefix: str, worker: int, go: Event, out: multiprocessing.Queue[int]) -> None:
    client = redis.Redis.from_url(url)
    ledger = QuotaLedger(client, Keys(prefix))
    go.wait()
    ok = 0
    for attempt in range(ATTEMPTS):
        now = ledger.server_time()
        ok += ledger.spend(f"w{worker}-{attempt}", ledger.buckets([spec(LIMIT)], now)).ok
    client.close()
    out.put(ok)


def test_eight_processes_racing_for_a_limit_of_twenty_get_exactly_twenty(redis_url: str, key_prefix: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_spend_many, args=(redis_url, key_prefix, w, go, out)) for w in range(WORKERS)]
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
    ledger = QuotaLedger(client, Keys(key_prefix))
    usage = ledger.usage(spec(LIMIT), ledger.server_time())
    client.close()
    assert granted == LIMIT == usage.used


def test_in_turn_reads_what_the_spend_script_would_answer_and_writes_nothing(backend: Backend) -> None:
    ledger = QuotaLedger(backend.client, backend.keys, edge_s=60)
    s = QuotaSpec("adhoc", ORG, 2, DailyWindow(), line=True)
    line = backend.keys.line("adhoc", ORG)
    backend.client.zadd(line, {"first": 1.0, "second": 2.0, "third": 3.0})  # admitted in this order
    buckets = ledger.buckets([s], NOON)
    before = sorted(backend.client.scan_iter(match=backend.keys.prefix + "*"))
    assert [ledger.in_turn(h, buckets) for h in ("first", "second", "third")] == [True, True, False]
    assert sorted(backend.client.scan_iter(match=backend.keys.prefix + "*")) == before
    assert ledger.spend("first", buckets, now=NOON).ok  # leaves the line: the next two move up
    assert [ledger.in_turn(h, buckets) for h in ("first", "second", "third")] == [True, True, False]
    assert ledger.spend("second", buckets, now=NOON).ok
    assert (ledger.in_turn("third", buckets), ledger.spend("third", buckets, now=NOON).ok) == (False, False)
    assert ledger.in_turn("outside-the-line", buckets) is False  # the window is full

"""API keys stored as SHA-256, checked in constant time; the metering of one step; route templates as labels."""

from __future__ import annotations

import pytest

from aep_activator.aep.api.paths import route_of
from aep_activator.aep.coordination.metrics import STEP_BUCKETS_S, StepMeter, bucket_label
from aep_activator.aep.coordination.runs import Change, Event, Failure, FailureKind, Next, RunRecord, RunStatus
from aep_activator.tasks import metering
from aep_activator.workers.api.keys import KeyRing, digest_of, new_key


def test_a_key_ring_knows_keys_by_their_hash_and_never_shows_one() -> None:
    ops_key, ops = new_key("ops1", "ops")
    producer_key, producer = new_key("billing", "producer")
    ring = KeyRing.parse(f"{ops}, {producer}")
    assert ring.verify(ops_key).actor == "api:ops1 (ops)"  # type: ignore[union-attr]
    assert ring.verify(producer_key).can_operate is False  # type: ignore[union-attr]
    assert ring.verify(ops_key[:-1]) is None and ring.verify("") is None
    assert ops_key not in ops and digest_of(ops_key) in ops
    assert ops_key not in repr(ring) and digest_of(ops_key) not in repr(ring)


def test_a_key_ring_refuses_a_name_listed_twice() -> None:
    _, a = new_key("same", "ops")
    _, b = new_key("same", "producer")
    with pytest.raises(ValueError, match="listed twice"):
        KeyRing.parse(f"{a},{b}")


def test_route_labels_are_templates_never_ids() -> None:
    assert route_of("/data/core/ups/segment/jobs/1234-abc") == "/data/core/ups/segment/jobs/{id}"
    assert route_of("/data/core/ups/export/jobs?limit=5") == "/data/core/ups/export/jobs"
    assert route_of("/data/foundation/flowservice/runs/r%2F1") == "/data/foundation/flowservice/runs/{id}"
    assert route_of("/data/core/ups/segment/jobs/a/b") == "other"
    assert route_of("/somewhere/else") == "other"


def test_a_duration_lands_in_the_smallest_bucket_that_holds_it() -> None:
    assert bucket_label(0.2, STEP_BUCKETS_S) == "0.5"
    assert bucket_label(0.5, STEP_BUCKETS_S) == "0.5"
    assert bucket_label(7200.0, STEP_BUCKETS_S) == "7200.0"
    assert bucket_label(10**6, STEP_BUCKETS_S) == "+Inf"


def record(**kw: object) -> RunRecord:
    base: dict[str, object] = {"run_id": "r1", "status": RunStatus.RUNNING, "step": "run_activation", "request": {},
                               "started_by": "t", "created_at": 100.0, "updated_at": 100.0, "step_since": 150.0}
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]


def test_a_step_done_counts_its_duration_an_adoption_and_its_requests() -> None:
    meter = StepMeter()
    meter.request("/data/core/activation/disflowprovider/adhocrun", "POST", "200", 0.07)
    change = Change(events=[Event("run_activation", "adopted", "1 flow run")], next=Next("poll_activation"))
    metering.count(meter, "run_activation", record(), change, now=160.0)
    assert change.metrics == {
        "req|/data/core/activation/disflowprovider/adhocrun|POST|200": 1,
        "req_ms|/data/core/activation/disflowprovider/adhocrun": 70,
        "req_le|/data/core/activation/disflowprovider/adhocrun|0.1": 1,
        "exec|run_activation|done": 1,
        "step_ms|run_activation": 10000,
        "step_le|run_activation|10.0": 1,
        "adopt|run_activation": 1,
    }


def test_an_aep_conflict_is_counted_once_per_refusal_and_a_recheck_is_not() -> None:
    refused = Change(set={"wait_kind": "conflict", "blocker": "fr-1"}, next=Next("run_activation", same_step=True))
    metering.count(StepMeter(), "run_activation", record(), refused, now=160.0)
    assert refused.metrics == {"exec|run_activation|wait": 1, "conflict": 1}
    recheck = Change(set={"wait_kind": "conflict"}, next=Next("run_activation", same_step=True))
    metering.count(StepMeter(), "run_activation", record(), recheck, now=160.0)
    assert recheck.metrics == {"exec|run_activation|wait": 1}


def test_a_failed_step_counts_a_failure_and_no_duration() -> None:
    change = Change(finish_status=RunStatus.FAILED, failure=Failure(FailureKind.PERMANENT, "no", "run_activation"))
    metering.count(StepMeter(), "run_activation", record(), change, now=160.0)
    assert change.metrics == {"exec|run_activation|failed": 1}
    assert '"metrics":{"exec|run_activation|failed":1}' in change.payload(60, 5)

"""Injected faults over HTTP with a fixed seed: 5xx, 429 + Retry-After, latency, drop, accept-then-timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from aep_activator.aepsim import SimulatorConfig
from aep_activator.aepsim.testing import SimulatorHarness

pytestmark = pytest.mark.integration

SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"
POST_SEGMENT_JOBS = f"POST {SEGMENT_JOBS}"
GET_SEGMENT_JOBS = f"GET {SEGMENT_JOBS}"
BASE = SimulatorConfig(seed=11, speed=600, hang_s=0.6, guardrails={"segment_jobs_per_day_per_sandbox": 1000})


@pytest.fixture(scope="module")
def harness() -> Iterator[SimulatorHarness]:
    with SimulatorHarness(BASE) as h:
        yield h


@pytest.fixture
def sim(harness: SimulatorHarness) -> SimulatorHarness:
    harness.restart_with(BASE)
    return harness


def configure(sim: SimulatorHarness, patch: dict[str, Any]) -> None:
    requests.put(sim.url("/simulator/config"), json=patch, timeout=5).raise_for_status()


def statuses(sim: SimulatorHarness, n: int) -> list[int]:
    return [sim.session.get(sim.url(SEGMENT_JOBS), timeout=5).status_code for _ in range(n)]


def test_injected_5xx_answers_carry_a_gateway_error_body(sim: SimulatorHarness) -> None:
    configure(sim, {"endpoint_faults": {GET_SEGMENT_JOBS: {"error_5xx_rate": 1.0}}})
    answers = [sim.session.get(sim.url(SEGMENT_JOBS), timeout=5) for _ in range(6)]
    assert {r.status_code for r in answers} <= {500, 502, 503}
    for r in answers:
        assert r.json()["error_code"] == f"{r.status_code}000"


def test_a_global_fault_rate_with_a_fixed_seed_replays_the_same_answers(sim: SimulatorHarness) -> None:
    configure(sim, {"faults": {"error_5xx_rate": 0.3, "rate_429": 0.3}})
    first = statuses(sim, 20)
    sim.restart_with(BASE.model_copy(update={"faults": BASE.faults.model_copy(
        update={"error_5xx_rate": 0.3, "rate_429": 0.3})}))
    assert statuses(sim, 20) == first
    assert {200, 429} <= set(first)
    assert set(first) & {500, 502, 503}


def test_global_faults_spare_ims_and_the_simulator_endpoints(sim: SimulatorHarness) -> None:
    configure(sim, {"faults": {"error_5xx_rate": 1.0}})
    assert sim.token()
    assert requests.get(sim.url("/simulator/stats"), timeout=5).status_code == 200
    assert statuses(sim, 1) != [200]


def test_an_injected_429_carries_retry_after_and_the_gateway_body(sim: SimulatorHarness) -> None:
    configure(sim, {"endpoint_faults": {GET_SEGMENT_JOBS: {"rate_429": 1.0, "retry_after_s": 7}}})
    r = sim.session.get(sim.url(SEGMENT_JOBS), timeout=5)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"
    assert r.json() == {"error_code": "429050", "message": "Too many requests"}


def test_added_latency_delays_the_answer_without_blocking_other_requests(sim: SimulatorHarness) -> None:
    configure(sim, {"endpoint_faults": {GET_SEGMENT_JOBS: {"latency_ms": 300}}})
    start = time.monotonic()
    assert sim.session.get(sim.url(SEGMENT_JOBS), timeout=5).status_code == 200
    assert time.monotonic() - start >= 0.3
    fast = time.monotonic()
    assert requests.get(sim.url("/simulator/stats"), timeout=5).status_code == 200
    assert time.monotonic() - fast < 0.3


def test_a_dropped_connection_gets_no_answer_and_creates_nothing(sim: SimulatorHarness) -> None:
    configure(sim, {"endpoint_faults": {POST_SEGMENT_JOBS: {"drop_rate": 1.0}}})
    with pytest.raises(requests.ConnectionError):
        sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5)
    stats = requests.get(sim.url("/simulator/stats"), timeout=5).json()
    assert stats["jobs"]["segment_jobs"] == {}
    assert stats["statuses"][POST_SEGMENT_JOBS] == {"dropped": 1}


def test_accept_then_timeout_creates_the_job_but_never_answers(sim: SimulatorHarness) -> None:
    configure(sim, {"endpoint_faults": {POST_SEGMENT_JOBS: {"hang_rate": 1.0}}})
    with pytest.raises(requests.ReadTimeout):
        sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=0.2)
    stats = requests.get(sim.url("/simulator/stats"), timeout=5).json()
    assert sum(stats["jobs"]["segment_jobs"].values()) == 1
    assert stats["statuses"][POST_SEGMENT_JOBS] == {"hung": 1}
    listed = sim.session.get(sim.url(SEGMENT_JOBS), timeout=5).json()
    assert listed["_page"]["totalCount"] == 1


def test_a_hung_request_is_closed_without_an_answer_after_hang_s(sim: SimulatorHarness) -> None:
    configure(sim, {"endpoint_faults": {POST_SEGMENT_JOBS: {"hang_rate": 1.0}}})
    start = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5)
    assert 0.5 <= time.monotonic() - start < 3

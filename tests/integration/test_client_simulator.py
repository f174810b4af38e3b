"""The foundation's client drives the simulator over HTTP through the tutorial's whole flow."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from aep_activator.aep.api.auth import IMSTokenProvider
from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import Conflict, ValidationFailed
from aep_activator.aep.api.models import (
    EXPORT_JOB_TERMINAL,
    FLOW_RUN_TERMINAL,
    SEGMENT_JOB_TERMINAL,
    ExportJobCreate,
    ExportJobStatus,
    FlowRunStatus,
    SegmentJobStatus,
)
from aep_activator.aep.coordination.tokens import RedisTokenCache
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.http.tornado_server import SimulatorServer

pytestmark = pytest.mark.integration

T = TypeVar("T")
EXAMPLE = json.loads(Path("examples/activation-request.json").read_text())
DEST = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
SEGMENT = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"


@pytest.fixture
def client(redis_url: str, key_prefix: str) -> Iterator[tuple[AEPClient, IMSTokenProvider, SimulatorServer]]:
    sim = SimulatorServer(SimulatorConfig(speed=600, seed=1))
    base = sim.start_in_thread()
    from pydantic import SecretStr

    with redis.Redis.from_url(redis_url) as r:
        tokens = IMSTokenProvider(
            ims_url=base,
            client_id="sim-client",
            client_secret=SecretStr("sim-secret"),
            scopes="openid,AdobeID",
            cache=RedisTokenCache(r, key_prefix, client_id="sim-client", scopes="openid,AdobeID"),
        )
        c = AEPClient(base, tokens=tokens, api_key="sim-client", org_id=sim.state.fixture.orgId, sandbox="prod")
        yield c, tokens, sim
        c.close()
    sim.stop()


def poll(get: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 15) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = get()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_token_segment_export_v1_and_v2_activations_and_flow_runs_all_succeed(client) -> None:
    c, tokens, sim = client
    seg = c.segment_jobs.create([SEGMENT])
    assert seg.status == SegmentJobStatus.NEW and seg.source == "api" and seg.segment_ids == [SEGMENT]
    seg = poll(lambda: c.segment_jobs.get(seg.id), lambda j: j.status in SEGMENT_JOB_TERMINAL)
    assert seg.status == SegmentJobStatus.SUCCEEDED
    assert seg.metrics and seg.metrics.totalTime and seg.metrics.totalTime.totalTimeInMs is not None
    assert [j.id for j in c.segment_jobs.list(segment_id=SEGMENT).children] == [seg.id]

    spec = ExportJobCreate.model_validate(EXAMPLE["export_job"])
    exp = c.export_jobs.create(spec)
    assert exp.status == ExportJobStatus.NEW and exp.id.isdigit()
    exp = poll(lambda: c.export_jobs.get(exp.id), lambda j: j.status in EXPORT_JOB_TERMINAL)
    assert exp.status == ExportJobStatus.SUCCEEDED and exp.destination and exp.destination.batchId
    assert [j.id for j in c.export_jobs.iter()] == [exp.id]

    v1 = c.activations.run({DEST: [SEGMENT]}, export_ids=[exp.id], version=1)
    (order,) = v1.order
    assert (order.segment, order.order) == (SEGMENT, DEST)
    assert order.statusURL.startswith(sim.base_url or "")
    run = poll(lambda: c.flow_runs.get(order.statusURL), lambda r: r.status in FLOW_RUN_TERMINAL)
    assert run.status == FlowRunStatus.SUCCESS and run.flowId == DEST

    v2 = c.activations.run({DEST: [SEGMENT]}, version=2)
    run2 = poll(lambda: c.flow_runs.get(v2.order[0].statusURL), lambda r: r.status in FLOW_RUN_TERMINAL)
    assert run2.status == FlowRunStatus.SUCCESS
    assert {r.id for r in c.flow_runs.list(flow_id=DEST).items} == {run.id, run2.id}
    assert tokens.fetches == 1, "one IMS token served the whole flow"


def test_a_second_run_on_a_busy_audience_is_a_conflict_with_the_running_ids(client) -> None:
    c, _, _ = client
    first = c.activations.run({DEST: [SEGMENT]}, version=2)
    with pytest.raises(Conflict) as info:
        c.activations.run({DEST: [SEGMENT]}, version=2)
    assert (info.value.segment_id, info.value.order_id) == (SEGMENT, DEST)
    assert info.value.flow_run_id == first.order[0].run_id


def test_an_audience_outside_the_dataflow_is_rejected_with_adobes_message(client) -> None:
    c, _, _ = client
    with pytest.raises(ValidationFailed, match="not part of this dataflow or out of schedule range"):
        c.activations.run({DEST: ["db8961e9-d52f-45bc-b3fb-76d0382a6851"]}, version=2)

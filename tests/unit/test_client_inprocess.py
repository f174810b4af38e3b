"""The real AEPClient against the simulator in-process (aepsim.testing.inprocess_session): the tutorial's
whole flow on a ManualClock, and how a dropped or hung connection reaches the client's error tree.
No server, no thread, no sleep."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from aep_activator.aep.api.auth import StaticToken
from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import NotFound, OutcomeUnknown, TransientError
from aep_activator.aep.api.models import (
    ExportJobCreate,
    ExportJobStatus,
    FlowRunStatus,
    SegmentJobStatus,
)
from aep_activator.aep.api.paths import IMS_TOKEN, SEGMENT_JOB, SEGMENT_JOBS
from aep_activator.aepsim import ManualClock, SimulatorConfig
from aep_activator.aepsim.api import SimContext
from aep_activator.aepsim.testing import InProcessSessions, inprocess_session

NOON = 1710072000.0  # 2024-03-10T12:00:00Z
SEGMENT = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
DEST = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
EXPORT = {
    "destination": {"datasetId": "5b7c86968f7b6501e21ba9df"},
    "schema": {"name": "_xdm.context.profile"},
    "filter": {"segments": [{"segmentId": SEGMENT}]},
}


@pytest.fixture
def sim() -> tuple[InProcessSessions, SimContext, ManualClock]:
    clock = ManualClock(NOON)
    sessions, ctx = inprocess_session(SimulatorConfig(seed=1), clock)
    return sessions, ctx, clock


def client_for(sessions: InProcessSessions, ctx: SimContext, token: str | None = None) -> AEPClient:
    fixture = ctx.state.fixture
    return AEPClient(
        sessions.base_url,
        tokens=StaticToken(SecretStr(token or ctx.config.static_token or "")),
        api_key=fixture.clients[0].clientId,
        org_id=fixture.orgId,
        sandbox="prod",
        session=sessions(),
    )


def ims_token(sessions: InProcessSessions, ctx: SimContext) -> str:
    client = ctx.state.fixture.clients[0]
    form = {"grant_type": "client_credentials", "client_id": client.clientId,
            "client_secret": client.clientSecret, "scope": "openid,AdobeID"}
    r = sessions().post(sessions.base_url + IMS_TOKEN, data=form, timeout=5)
    assert r.status_code == 200
    token: str = r.json()["access_token"]
    return token


def test_the_tutorial_flow_runs_in_process_from_segment_job_to_flow_runs(
    sim: tuple[InProcessSessions, SimContext, ManualClock],
) -> None:
    sessions, ctx, clock = sim
    c = client_for(sessions, ctx, token=ims_token(sessions, ctx))

    seg = c.segment_jobs.create([SEGMENT])
    assert seg.status == SegmentJobStatus.NEW and seg.source == "api"
    clock.advance(780)
    assert c.segment_jobs.get(seg.id).status == SegmentJobStatus.SUCCEEDED
    assert [j.id for j in c.segment_jobs.list(segment_id=SEGMENT).children] == [seg.id]

    exp = c.export_jobs.create(ExportJobCreate.model_validate(EXPORT))
    assert exp.status == ExportJobStatus.NEW
    clock.advance(300)
    assert c.export_jobs.get(exp.id).status == ExportJobStatus.SUCCEEDED
    assert [j.id for j in c.export_jobs.iter()] == [exp.id]

    v1 = c.activations.run({DEST: [SEGMENT]}, export_ids=[exp.id], version=1)
    (order,) = v1.order
    assert (order.segment, order.order) == (SEGMENT, DEST)
    assert order.statusURL.startswith(sessions.base_url)
    assert c.flow_runs.get(order.statusURL).status == FlowRunStatus.PROCESSING
    clock.advance(180)
    first = c.flow_runs.get(order.statusURL)
    assert first.status == FlowRunStatus.SUCCESS and first.flowId == DEST

    v2 = c.activations.run({DEST: [SEGMENT]}, version=2)
    clock.advance(180)
    second = c.flow_runs.get(v2.order[0].run_id)
    assert second.status == FlowRunStatus.SUCCESS
    assert [r.id for r in c.flow_runs.list(flow_id=DEST).items] == [second.id, first.id]
    assert ctx.journal.counters()["calls"][f"POST {SEGMENT_JOBS}"] == 1


def test_a_dropped_post_is_outcome_unknown_and_created_nothing(
    sim: tuple[InProcessSessions, SimContext, ManualClock],
) -> None:
    sessions, ctx, _ = sim
    ctx.apply_config({"endpoint_faults": {f"POST {SEGMENT_JOBS}": {"drop_rate": 1.0}}})
    with pytest.raises(OutcomeUnknown):
        client_for(sessions, ctx).segment_jobs.create([SEGMENT])
    assert ctx.state.segment_jobs == {}
    assert ctx.journal.counters()["statuses"][f"POST {SEGMENT_JOBS}"] == {"dropped": 1}


def test_a_dropped_get_is_a_plain_transient_error(sim: tuple[InProcessSessions, SimContext, ManualClock]) -> None:
    sessions, ctx, _ = sim
    ctx.apply_config({"endpoint_faults": {f"GET {SEGMENT_JOB}": {"drop_rate": 1.0}}})
    with pytest.raises(TransientError) as info:
        client_for(sessions, ctx).segment_jobs.get("any")
    assert not isinstance(info.value, OutcomeUnknown)


def test_a_hung_post_created_the_job_but_the_client_sees_outcome_unknown(
    sim: tuple[InProcessSessions, SimContext, ManualClock],
) -> None:
    sessions, ctx, _ = sim
    ctx.apply_config({"endpoint_faults": {f"POST {SEGMENT_JOBS}": {"hang_rate": 1.0}}, "hang_s": 3600})
    c = client_for(sessions, ctx)
    with pytest.raises(OutcomeUnknown):
        c.segment_jobs.create([SEGMENT])
    (job,) = ctx.state.segment_jobs.values()
    assert [j.id for j in c.segment_jobs.list().children] == [job.id], "look before re-creating finds it"
    assert ctx.journal.counters()["statuses"][f"POST {SEGMENT_JOBS}"] == {"hung": 1}


def test_added_latency_is_recorded_and_never_slept(sim: tuple[InProcessSessions, SimContext, ManualClock]) -> None:
    sessions, ctx, clock = sim
    ctx.apply_config({"endpoint_faults": {f"GET {SEGMENT_JOBS}": {"latency_ms": 90_000}}})
    before = clock.now()
    client_for(sessions, ctx).segment_jobs.list()
    assert sessions.adapter.latencies_s == [90.0]
    assert clock.now() == before


def test_another_sandboxs_job_is_a_404_in_process(sim: tuple[InProcessSessions, SimContext, ManualClock]) -> None:
    sessions, ctx, _ = sim
    job = client_for(sessions, ctx).segment_jobs.create([SEGMENT])
    fixture = ctx.state.fixture
    dev = AEPClient(sessions.base_url, tokens=StaticToken(SecretStr(ctx.config.static_token or "")),
                    api_key=fixture.clients[0].clientId, org_id=fixture.orgId, sandbox="dev", session=sessions())
    with pytest.raises(NotFound):
        dev.segment_jobs.get(job.id)
    assert dev.segment_jobs.list().children == []


def test_the_in_process_journal_masks_bearer_tokens_and_client_secrets_wherever_they_are_sent(
    sim: tuple[InProcessSessions, SimContext, ManualClock],
) -> None:
    sessions, ctx, _ = sim
    secret = ctx.state.fixture.clients[0].clientSecret
    token = ims_token(sessions, ctx)
    session = sessions()
    session.post(f"{sessions.base_url}{IMS_TOKEN}?client_id=sim-client&client_secret={secret}", timeout=5,
                 data={"grant_type": "client_credentials", "scope": "openid"})
    client_for(sessions, ctx, token=token).segment_jobs.list()
    entries = ctx.journal.since(0)
    assert [e["status"] for e in entries] == [200, 200, 200]
    assert secret not in str(entries) and token not in str(entries)
    assert entries[1]["query"]["client_secret"] == "***"
    assert entries[2]["headers"]["Authorization"] == "Bearer ***"

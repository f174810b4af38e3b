"""Work this system did not start (issue 11): scheduled flow runs by AEP's scheduler, and segment and export
jobs made in the AEP UI, through /simulator/admin/* and the state's methods. They behave like real ones:
a scheduled run blocks ad-hoc runs for its audiences, UI segment jobs spend the FAE quota, the nightly
scheduler's do not."""

from __future__ import annotations

from typing import Any

import pytest

from aep_activator.aep.api import paths
from aep_activator.aep.api.models import ADHOC_V2_ACCEPT, FlowRun, SegmentJob
from aep_activator.aepsim import ManualClock, SimulatorConfig
from aep_activator.aepsim.state.flow_runs import SCHEDULER_CLIENT
from aep_activator.aepsim.testing import inprocess_session

NOON = 1710072000.0
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
SEG_GOLD = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
SEG_UNMAPPED = "db8961e9-d52f-45bc-b3fb-76d0382a6851"
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
EXPORT = {"destination": {"datasetId": "5b7c86968f7b6501e21ba9df"}, "schema": {"name": "_xdm.context.profile"}}


class Api:
    def __init__(self, **config: Any) -> None:
        self.clock = ManualClock(NOON)
        self.sessions, self.ctx = inprocess_session(SimulatorConfig.model_validate({"seed": 5, **config}), self.clock)
        self.session = self.sessions()

    def admin(self, what: str, body: Any) -> Any:
        return self.session.post(f"{self.sessions.base_url}/simulator/admin/{what}", json=body, timeout=5)

    def aep(self, method: str, path: str, sandbox: str = "prod", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.ctx.config.static_token}", "x-api-key": "sim-client",
                   "x-gw-ims-org-id": self.ctx.state.fixture.orgId, "x-sandbox-name": sandbox,
                   **kw.pop("headers", {})}
        return self.session.request(method, self.sessions.base_url + path, headers=headers, timeout=5, **kw)

    def adhoc(self, *audiences: str, sandbox: str = "prod") -> Any:
        return self.aep("POST", paths.ADHOC_RUN, sandbox, json={"activationInfo": {FLOW_A: list(audiences)}},
                        headers={"Accept": ADHOC_V2_ACCEPT})


def test_a_scheduled_run_is_created_by_the_scheduler_not_by_the_callers_client() -> None:
    api = Api()
    r = api.admin("flow-runs", {"flowId": FLOW_A, "audiences": [SEG_US]})
    assert r.status_code == 200
    run = FlowRun.model_validate(r.json())
    assert run.createdClient == run.createdBy == SCHEDULER_CLIENT != "sim-client"
    assert run.status == "processing" and run.flowId == FLOW_A
    assert api.aep("GET", paths.FLOW_RUN.format(id=run.id)).json()["items"][0]["id"] == run.id
    ad_hoc = api.adhoc(SEG_GOLD).json()["order"][0]["statusURL"].rsplit("/", 1)[1]
    mine = api.aep("GET", paths.FLOW_RUN.format(id=ad_hoc)).json()["items"][0]
    assert mine["createdClient"] == mine["createdBy"] == "sim-client", "a service token: createdBy = createdClient"


def test_a_processing_scheduled_run_blocks_ad_hoc_runs_for_its_audiences_with_the_verbatim_400() -> None:
    api = Api()
    run_id = api.admin("flow-runs", {"flowId": FLOW_A, "audiences": [SEG_US]}).json()["id"]
    r = api.adhoc(SEG_US)
    assert r.status_code == 400
    verbatim = f"Run already going on for audience {SEG_US} for order {FLOW_A} with run id {run_id}"
    assert r.json() == {"message": verbatim}
    assert api.adhoc(SEG_GOLD).status_code == 200, "an audience the scheduled run does not export is free"
    assert api.adhoc(SEG_US, sandbox="dev").status_code == 200, "the scheduled run is prod's"
    api.clock.advance(180)
    assert api.adhoc(SEG_US).status_code == 200, "the scheduled run ended"
    assert api.ctx.stats()["quota_used"]["adhoc_jobs_per_org"]["2024-03-10"] == {api.ctx.state.fixture.orgId: 3}


def test_a_scheduled_run_covers_every_mapped_audience_by_default_in_one_run() -> None:
    api = Api()
    run = api.admin("flow-runs", {"flowId": FLOW_A}).json()
    api.clock.advance(180)
    done = api.aep("GET", paths.FLOW_RUN.format(id=run["id"])).json()["items"][0]
    entities = done["metrics"]["recordSummary"]["targetSummaries"][0]["entitySummaries"]
    assert [e["id"] for e in entities] == [f"segment:{SEG_US}", f"segment:{SEG_GOLD}"]


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"flowId": "nope"}, 404, "nope"),
    ({"flowId": FLOW_A, "audiences": [SEG_UNMAPPED]}, 400, "not part of this dataflow"),
    ({"flowId": FLOW_A, "sandbox": "qa"}, 403, "'qa'"),
    ({"flowId": FLOW_A, "extra": 1}, 400, "extra"),
    ({"audiences": [SEG_US]}, 400, "flowId"),
])
def test_a_bad_scheduled_run_request_is_refused_and_starts_nothing(
    body: dict[str, Any], status: int, text: str
) -> None:
    api = Api()
    r = api.admin("flow-runs", body)
    assert r.status_code == status
    assert text in str(r.json())
    assert api.ctx.state.flow_runs == {}


def test_segment_jobs_from_the_ui_spend_the_daily_fae_quota_the_next_api_post_then_gets_429() -> None:
    api = Api()
    for _ in range(2):
        r = api.admin("segment-jobs", {"segmentIds": [SEG_US]})
        assert r.status_code == 200
        assert SegmentJob.model_validate(r.json()).source == "ui"
    r = api.aep("POST", paths.SEGMENT_JOBS, json=[{"segmentId": SEG_US}])
    assert r.status_code == 429 and r.json()["error_code"] == "429001"
    assert api.aep("POST", paths.SEGMENT_JOBS, "dev", json=[{"segmentId": SEG_US}]).status_code == 200
    listed = api.aep("GET", paths.SEGMENT_JOBS).json()["children"]
    assert [j["source"] for j in listed] == ["ui", "ui"]


def test_the_nightly_scheduler_segment_job_spends_no_quota_and_names_its_schedule() -> None:
    api = Api()
    for _ in range(3):
        job = api.admin("segment-jobs", {"segmentIds": [SEG_US, SEG_GOLD], "source": "scheduler"}).json()
        assert job["source"] == "scheduler" and set(job["properties"]) == {"scheduleId", "runId"}
    assert api.aep("POST", paths.SEGMENT_JOBS, json=[{"segmentId": SEG_US}]).status_code == 200
    assert api.aep("POST", paths.SEGMENT_JOBS, json=[{"segmentId": SEG_US}]).status_code == 200


def test_an_out_of_band_export_job_lands_in_its_sandbox_like_any_other() -> None:
    api = Api()
    job = api.admin("export-jobs", {"job": EXPORT, "sandbox": "dev"}).json()
    assert [r["id"] for r in api.aep("GET", paths.EXPORT_JOBS, "dev").json()["records"]] == [job["id"]]
    assert api.aep("GET", paths.EXPORT_JOBS, "prod").json()["records"] == []
    bad = api.admin("export-jobs", {"job": {"schema": {"name": "x"}}})
    assert bad.status_code == 400 and "destination" in bad.json()["message"]


def test_an_unknown_segment_source_is_refused() -> None:
    api = Api()
    r = api.admin("segment-jobs", {"segmentIds": [SEG_US], "source": "robot"})
    assert r.status_code == 400 and "source" in r.json()["message"]
    with pytest.raises(ValueError, match="source"):
        api.ctx.state.create_segment_job([SEG_US], source="robot")
    assert api.ctx.state.segment_jobs == {}

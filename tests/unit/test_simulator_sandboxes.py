"""Sandboxes kept apart (issue 11 item 1): jobs, runs, quotas and guardrails per sandbox; no sandbox
header means the default sandbox; an unknown name is refused and changes nothing; the yearly FAE limit
per sandbox type, with its window opening on a configurable day."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from aep_activator.aep.api import paths
from aep_activator.aep.api.models import ADHOC_V2_ACCEPT
from aep_activator.aepsim import Guardrails, ManualClock, SimulatorConfig, SimulatorState
from aep_activator.aepsim.state.errors import SimError
from aep_activator.aepsim.testing import inprocess_session

NOON = 1710072000.0  # 2024-03-10T12:00:00Z
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
SEG_GOLD = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
EXPORT = {"destination": {"datasetId": "5b7c86968f7b6501e21ba9df"}, "schema": {"name": "_xdm.context.profile"}}


class Api:
    def __init__(self, **config: Any) -> None:
        self.clock = ManualClock(NOON)
        self.sessions, self.ctx = inprocess_session(SimulatorConfig.model_validate({"seed": 9, **config}), self.clock)
        self.session = self.sessions()

    def call(self, method: str, path: str, sandbox: str | None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.ctx.config.static_token}", "x-api-key": "sim-client",
                   "x-gw-ims-org-id": self.ctx.state.fixture.orgId, **kw.pop("headers", {})}
        if sandbox is not None:
            headers["x-sandbox-name"] = sandbox
        return self.session.request(method, self.sessions.base_url + path, headers=headers, timeout=5, **kw)


def test_a_segment_job_created_in_dev_is_invisible_from_prod() -> None:
    api = Api()
    job = api.call("POST", paths.SEGMENT_JOBS, "dev", json=[{"segmentId": SEG_US}]).json()
    assert job["sandbox"]["sandboxName"] == "dev" and job["sandbox"]["type"] == "development"
    assert api.call("GET", paths.SEGMENT_JOB.format(id=job["id"]), "prod").status_code == 404
    assert api.call("DELETE", paths.SEGMENT_JOB.format(id=job["id"]), "prod").status_code == 404
    assert api.call("GET", paths.SEGMENT_JOBS, "prod").json()["children"] == []
    assert api.call("GET", paths.SEGMENT_JOB.format(id=job["id"]), "dev").json()["status"] == "NEW"


def test_export_jobs_and_flow_runs_are_per_sandbox_too() -> None:
    api = Api()
    export_id = api.call("POST", paths.EXPORT_JOBS, "dev", json=EXPORT).json()["id"]
    assert api.call("GET", paths.EXPORT_JOB.format(id=export_id), "prod").status_code == 404
    assert api.call("GET", paths.EXPORT_JOBS, "prod").json()["records"] == []
    v1 = {"activationInfo": {FLOW_A: [SEG_US]}, "exportIds": [str(export_id)]}
    assert api.call("POST", paths.ADHOC_RUN, "prod", json=v1).status_code == 400, "another sandbox's export job"
    order = api.call("POST", paths.ADHOC_RUN, "dev", json=v1).json()["order"][0]
    run_id = order["statusURL"].rsplit("/", 1)[1]
    assert api.call("GET", paths.FLOW_RUN.format(id=run_id), "prod").status_code == 404
    assert api.call("GET", paths.FLOW_RUNS, "prod").json()["items"] == []
    assert api.call("GET", paths.FLOW_RUN.format(id=run_id), "dev").json()["items"][0]["sandboxName"] == "dev"


def test_a_run_going_on_in_one_sandbox_does_not_block_the_same_pair_in_another() -> None:
    api = Api()
    v2 = {"json": {"activationInfo": {FLOW_A: [SEG_US]}}, "headers": {"Accept": ADHOC_V2_ACCEPT}}
    assert api.call("POST", paths.ADHOC_RUN, "dev", **v2).status_code == 200
    assert api.call("POST", paths.ADHOC_RUN, "dev", **v2).status_code == 400
    assert api.call("POST", paths.ADHOC_RUN, "prod", **v2).status_code == 200


def test_the_daily_fae_quota_of_two_is_per_sandbox() -> None:
    api = Api()
    for sandbox in ("prod", "prod", "dev", "dev"):
        assert api.call("POST", paths.SEGMENT_JOBS, sandbox, json=[{"segmentId": SEG_US}]).status_code == 200
    for sandbox in ("prod", "dev"):
        r = api.call("POST", paths.SEGMENT_JOBS, sandbox, json=[{"segmentId": SEG_US}])
        assert r.status_code == 429 and f"/{sandbox};" in r.json()["message"]


def test_no_sandbox_header_means_the_default_sandbox() -> None:
    api = Api()
    job = api.call("POST", paths.SEGMENT_JOBS, None, json=[{"segmentId": SEG_US}]).json()
    assert job["sandbox"]["sandboxName"] == "prod" and job["sandbox"]["default"] is True
    assert api.call("GET", paths.SEGMENT_JOB.format(id=job["id"]), "prod").status_code == 200


@pytest.mark.parametrize(("method", "path"), [("POST", paths.SEGMENT_JOBS), ("GET", paths.FLOW_RUNS),
                                              ("POST", paths.EXPORT_JOBS), ("GET", paths.SEGMENT_JOB)])
def test_an_unknown_sandbox_is_refused_by_the_gateway_and_creates_nothing(method: str, path: str) -> None:
    api = Api()
    body = [{"segmentId": SEG_US}] if path == paths.SEGMENT_JOBS else EXPORT
    r = api.call(method, path.format(id="x"), "staging", json=body if method == "POST" else None)
    assert r.status_code == 403
    assert r.json()["error_code"] == "403400" and "'staging'" in r.json()["message"]
    assert api.ctx.state.segment_jobs == {} and api.ctx.state.export_jobs == {}


def test_the_state_refuses_an_unknown_sandbox_and_never_invents_one() -> None:
    state = SimulatorState(SimulatorConfig(seed=1), ManualClock(NOON))
    with pytest.raises(SimError) as err:
        state.create_segment_job([SEG_US], sandbox_name="qa")
    assert err.value.status == 403
    assert state.fixture.sandbox("qa") is None and state.segment_jobs == {}


# ------------------------------------------------------------------------------------------ yearly limit


def yearly_state(**guardrails: Any) -> tuple[SimulatorState, ManualClock]:
    clock = ManualClock(NOON)
    limits = {"segment_jobs_per_day_per_sandbox": 1000, **guardrails}
    return SimulatorState(SimulatorConfig(seed=1, guardrails=Guardrails(**limits)), clock), clock


def test_the_yearly_limit_follows_the_sandbox_type_and_answers_like_the_daily_one() -> None:
    state, _ = yearly_state(segment_jobs_per_year_production=2, segment_jobs_per_year_development=3)
    for sandbox, n in (("prod", 2), ("dev", 3)):
        for _ in range(n):
            state.create_segment_job([SEG_US], sandbox_name=sandbox)
        with pytest.raises(SimError) as err:
            state.create_segment_job([SEG_US], sandbox_name=sandbox)
        assert err.value.status == 429 and err.value.body is not None
        assert err.value.body["error_code"] == "429001" and "Yearly limit" in err.value.body["message"]
        next_year = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
        assert err.value.headers["Retry-After"] == str(int(next_year - NOON))


def test_the_yearly_window_opens_on_the_configured_day() -> None:
    state, clock = yearly_state(segment_jobs_per_year_production=1, quota_year_start="03-11")
    state.create_segment_job([SEG_US])
    with pytest.raises(SimError) as err:
        state.create_segment_job([SEG_GOLD])
    assert err.value.headers["Retry-After"] == str(12 * 3600), "2024-03-11T00:00Z is 12 h after noon"
    clock.advance(12 * 3600)
    state.create_segment_job([SEG_GOLD])
    assert state.quota.snapshot()["segment_jobs_per_sandbox_per_year"] == {
        "2023-03-11": {f"{state.fixture.orgId}/prod": 1}, "2024-03-11": {f"{state.fixture.orgId}/prod": 1}}


def test_the_default_yearly_limits_are_fifty_and_a_hundred() -> None:
    guard = Guardrails()
    assert (guard.segment_jobs_per_year("production"), guard.segment_jobs_per_year("development")) == (50, 100)
    assert guard.quota_year_start == "01-01"


@pytest.mark.parametrize("bad", ["02-29", "13-01", "1-1", "01/01", "\u0660\u0661-\u0660\u0661", ""])
def test_a_bad_quota_year_start_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError, match="quota_year_start"):
        Guardrails(quota_year_start=bad)

"""The simulator over HTTP: gateway errors, validation, 404s, paging, accounting and control endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from aep_activator.aep.api.models import ExportJobList, FlowRunList, SegmentJob, SegmentJobList
from aep_activator.aepsim import ManualClock, SimulatorConfig
from aep_activator.aepsim.testing import SimulatorHarness

pytestmark = pytest.mark.integration

NOON = 1710072000.0
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
SEG_GOLD = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
SEG_CART = "3a1b2c3d-4e5f-6789-abcd-ef0123456789"
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
FLOW_B = "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
V2 = "application/vnd.adobe.adhoc.activation+json; version=2"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"
EXPORT_JOBS = "/data/core/ups/export/jobs"
ADHOC = "/data/core/activation/disflowprovider/adhocrun"
RUNS = "/data/foundation/flowservice/runs"
BASE = SimulatorConfig(seed=3, guardrails={"segment_jobs_per_day_per_sandbox": 100})
EXPORT_BODY = {"destination": {"datasetId": "5b7c86968f7b6501e21ba9df"},
               "schema": {"name": "_xdm.context.profile"}, "filter": {"segments": [{"segmentId": SEG_US}]}}


@pytest.fixture(scope="module")
def harness() -> Iterator[SimulatorHarness]:
    with SimulatorHarness(BASE, ManualClock(NOON)) as h:
        yield h


@pytest.fixture
def sim(harness: SimulatorHarness) -> SimulatorHarness:
    clock = harness.server.ctx.clock
    assert isinstance(clock, ManualClock)
    clock.set(NOON)
    harness.restart_with(BASE)
    return harness


@pytest.fixture
def clock(sim: SimulatorHarness) -> ManualClock:
    clock = sim.server.ctx.clock
    assert isinstance(clock, ManualClock)
    return clock


# ------------------------------------------------------------------------------------------ IMS and gateway


def test_ims_issues_a_bearer_token_in_seconds_for_form_or_query_credentials(sim: SimulatorHarness) -> None:
    form = requests.post(sim.url("/ims/token/v3"), timeout=5, data={
        "grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "sim-secret",
        "scope": "openid"})
    query = requests.post(sim.url("/ims/token/v3?client_id=sim-client"), timeout=5, data={
        "grant_type": "client_credentials", "client_secret": "sim-secret", "scope": "openid"})
    assert form.status_code == 200
    assert query.status_code == 200
    assert form.json()["token_type"] == "bearer"
    assert form.json()["expires_in"] == 86399


def test_ims_rejects_a_wrong_secret_with_an_oauth_error(sim: SimulatorHarness) -> None:
    r = requests.post(sim.url("/ims/token/v3"), timeout=5, data={
        "grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "wrong",
        "scope": "x"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert "error_description" in r.json()


def test_a_token_expires_after_expires_in_seconds_of_simulated_time(sim: SimulatorHarness,
                                                                    clock: ManualClock) -> None:
    headers = sim.headers()
    assert requests.get(sim.url(SEGMENT_JOBS), headers=headers, timeout=5).status_code == 200
    clock.advance(86399)
    r = requests.get(sim.url(SEGMENT_JOBS), headers=headers, timeout=5)
    assert r.status_code == 401
    assert r.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"Authorization": None}, 403, "403010"),
    ({"Authorization": "Bearer not-a-token"}, 401, "401013"),
    ({"x-api-key": None}, 403, "403000"),
    ({"x-api-key": "someone-else"}, 403, "403003"),
    ({"x-gw-ims-org-id": None}, 400, "400003"),
    ({"x-gw-ims-org-id": "OTHER@AdobeOrg"}, 403, "403027"),
])
def test_the_gateway_answers_its_documented_error_codes(sim: SimulatorHarness, change: dict[str, str | None],
                                                        status: int, code: str) -> None:
    headers = {k: v for k, v in {**sim.headers(), **change}.items() if v is not None}
    r = requests.get(sim.url(SEGMENT_JOBS), headers=headers, timeout=5)
    assert r.status_code == status
    assert r.json()["error_code"] == code


def test_the_configured_static_token_is_accepted(sim: SimulatorHarness) -> None:
    r = requests.get(sim.url(SEGMENT_JOBS), headers=sim.headers(token="sim-static-token"), timeout=5)
    assert r.status_code == 200


def test_a_post_without_json_content_type_gets_the_documented_400(sim: SimulatorHarness) -> None:
    r = sim.session.post(sim.url(SEGMENT_JOBS), data=b'[{"segmentId": "x"}]',
                         headers={"Content-Type": "text/plain"}, timeout=5)
    assert r.status_code == 400
    assert r.json()["detail"] == "A valid content-type must be specified"


# ------------------------------------------------------------------------------------------ validation, 404


def test_malformed_json_is_a_400(sim: SimulatorHarness) -> None:
    r = sim.session.post(sim.url(SEGMENT_JOBS), data=b'[{"segmentId": "x",}]', timeout=5)
    assert r.status_code == 400
    assert "Malformed JSON" in r.json()["message"]


def test_a_segment_job_body_missing_segment_id_names_the_field(sim: SimulatorHarness) -> None:
    r = sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segment": SEG_US}], timeout=5)
    assert r.status_code == 400
    assert "[0].segmentId" in r.json()["message"]


def test_an_export_job_body_missing_the_destination_names_the_field(sim: SimulatorHarness) -> None:
    r = sim.session.post(sim.url(EXPORT_JOBS), json={"schema": {"name": "_xdm.context.profile"}}, timeout=5)
    assert r.status_code == 400
    assert "destination" in r.json()["message"]


def test_an_adhoc_body_missing_activation_info_names_the_field(sim: SimulatorHarness) -> None:
    r = sim.session.post(sim.url(ADHOC), json={"exportIds": ["1"]}, timeout=5)
    assert r.status_code == 400
    assert "activationInfo" in r.json()["message"]


def test_v1_without_export_ids_and_v2_with_export_ids_are_both_400(sim: SimulatorHarness) -> None:
    v1 = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}}, timeout=5)
    v2 = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}, "exportIds": ["100"]},
                          headers={"Accept": V2}, timeout=5)
    assert v1.status_code == 400
    assert "exportIds" in v1.json()["message"]
    assert v2.status_code == 400
    assert "exportIds" in v2.json()["message"]


def test_v1_accepts_the_tutorials_export_id_spelling(sim: SimulatorHarness) -> None:
    export_id = sim.session.post(sim.url(EXPORT_JOBS), json=EXPORT_BODY, timeout=5).json()["id"]
    r = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}, "exportId": [export_id]},
                         timeout=5)
    assert r.status_code == 200


@pytest.mark.parametrize("path", [f"{SEGMENT_JOBS}/nope", f"{EXPORT_JOBS}/12345", f"{RUNS}/nope"])
def test_unknown_ids_are_404(sim: SimulatorHarness, path: str) -> None:
    assert sim.session.get(sim.url(path), timeout=5).status_code == 404


def test_an_unknown_destination_is_a_404_with_a_message(sim: SimulatorHarness) -> None:
    r = sim.session.post(sim.url(ADHOC), json={"activationInfo": {"nope": [SEG_US]}},
                         headers={"Accept": V2}, timeout=5)
    assert r.status_code == 404
    assert "nope" in r.json()["message"]


# ------------------------------------------------------------------------------------------ flows


def test_the_status_url_points_back_at_the_simulator_and_the_run_completes(sim: SimulatorHarness,
                                                                          clock: ManualClock) -> None:
    r = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}},
                         headers={"Accept": V2}, timeout=5)
    url = r.json()["order"][0]["statusURL"]
    assert url.startswith(sim.base_url + RUNS + "/")
    clock.advance(180)
    runs = FlowRunList.model_validate(sim.session.get(url, timeout=5).json())
    assert runs.items[0].status == "success"


def test_segment_job_delete_answers_204_and_the_job_ends_cancelled(sim: SimulatorHarness,
                                                                   clock: ManualClock) -> None:
    job_id = sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5).json()["id"]
    r = sim.session.delete(sim.url(f"{SEGMENT_JOBS}/{job_id}"), timeout=5)
    assert r.status_code == 204
    assert r.content == b""
    clock.advance(10)
    job = SegmentJob.model_validate(sim.session.get(sim.url(f"{SEGMENT_JOBS}/{job_id}"), timeout=5).json())
    assert job.status == "CANCELLED"


def test_segment_job_list_pages_filters_and_sorts(sim: SimulatorHarness, clock: ManualClock) -> None:
    ids = []
    for seg in (SEG_US, SEG_GOLD, SEG_US):
        ids.append(sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": seg}], timeout=5).json()["id"])
        clock.advance(1)
    first = SegmentJobList.model_validate(sim.session.get(sim.url(SEGMENT_JOBS), params={"limit": 2},
                                                          timeout=5).json())
    assert first.page is not None
    assert first.page.totalCount == 3
    assert [j.id for j in first.children] == [ids[2], ids[1]]
    assert first.links is not None
    href = first.links["next"]["href"]
    second = sim.session.get(sim.url("/data/core/ups" + href), timeout=5).json()
    assert [j["id"] for j in second["children"]] == [ids[0]]
    assert second["_links"]["next"] == {}
    filtered = sim.session.get(sim.url(SEGMENT_JOBS), timeout=5, params={
        "property": f"segments~segmentId=={SEG_US}", "sort": "creationTime:asc", "status": "NEW"}).json()
    assert [j["id"] for j in filtered["children"]] == [ids[0], ids[2]]


def test_export_job_list_follows_link_next_until_empty(sim: SimulatorHarness, clock: ManualClock) -> None:
    ids = []
    for _ in range(5):
        ids.append(sim.session.post(sim.url(EXPORT_JOBS), json=EXPORT_BODY, timeout=5).json()["id"])
        clock.advance(1)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        r = sim.session.get(sim.url(EXPORT_JOBS), params=params, timeout=5)
        page = ExportJobList.model_validate(r.json())
        seen += [j.id for j in page.records]
        if page.next_offset is None:
            assert page.link == {"next": ""}
            break
        params = {"limit": 2, "offset": page.next_offset}
    assert seen == [str(i) for i in reversed(ids)]


def test_flow_runs_can_be_listed_by_flow_id(sim: SimulatorHarness, clock: ManualClock) -> None:
    post = {"headers": {"Accept": V2}, "timeout": 5}
    a = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}}, **post).json()  # type: ignore[arg-type]
    clock.advance(1)
    sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_B: [SEG_CART]}}, **post)  # type: ignore[arg-type]
    r = sim.session.get(sim.url(RUNS), params={"property": f"flowId=={FLOW_A}"}, timeout=5)
    runs = FlowRunList.model_validate(r.json())
    assert [run.id for run in runs.items] == [a["order"][0]["statusURL"].rsplit("/", 1)[1]]
    assert all(run.flowId == FLOW_A for run in runs.items)


# ------------------------------------------------------------------------------------------ accounting


def test_the_journal_masks_tokens_and_client_secrets(sim: SimulatorHarness) -> None:
    sim.session.get(sim.url(SEGMENT_JOBS), timeout=5)
    entries = requests.get(sim.url("/simulator/journal"), timeout=5).json()["entries"]
    ims = next(e for e in entries if e["template"] == "/ims/token/v3")
    aep = next(e for e in entries if e["template"] == SEGMENT_JOBS)
    assert ims["body"]["client_secret"] == "***"
    assert "sim-secret" not in str(entries)
    assert aep["headers"]["Authorization"] == "Bearer ***"
    assert aep["status"] == 200
    later = requests.get(sim.url("/simulator/journal"), params={"since": aep["seq"]}, timeout=5).json()
    assert all(e["seq"] > aep["seq"] for e in later["entries"])


def test_stats_count_calls_statuses_jobs_quota_and_tokens(sim: SimulatorHarness) -> None:
    sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5)
    sim.session.get(sim.url(f"{SEGMENT_JOBS}/missing"), timeout=5)
    stats = requests.get(sim.url("/simulator/stats"), timeout=5).json()
    assert stats["calls"][f"POST {SEGMENT_JOBS}"] == 1
    assert stats["statuses"][f"GET {SEGMENT_JOBS}/{{id}}"] == {"404": 1}
    assert stats["jobs"]["segment_jobs"] == {"NEW": 1}
    assert stats["quota_used"]["segment_jobs_per_sandbox"]["2024-03-10"] == {
        f"{sim.org_id}/prod": 1}
    assert stats["tokens_issued"] == 1


def test_reset_clears_jobs_journal_and_tokens_but_keeps_the_config(sim: SimulatorHarness) -> None:
    old_headers = sim.headers()
    requests.put(sim.url("/simulator/config"), json={"speed": 5}, timeout=5).raise_for_status()
    sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5)
    assert requests.post(sim.url("/simulator/reset"), timeout=5).status_code == 200
    stats = requests.get(sim.url("/simulator/stats"), timeout=5).json()
    assert stats["jobs"]["segment_jobs"] == {}
    assert stats["calls"] == {}
    assert requests.get(sim.url(SEGMENT_JOBS), headers=old_headers, timeout=5).status_code == 401
    assert requests.get(sim.url("/simulator/config"), timeout=5).json()["speed"] == 5


def test_config_put_changes_settings_at_run_time_and_rejects_unknown_keys(sim: SimulatorHarness) -> None:
    r = requests.put(sim.url("/simulator/config"), timeout=5,
                     json={"speed": 600, "guardrails": {"max_segments_per_segment_job": 1}})
    assert r.status_code == 200
    assert r.json()["guardrails"]["max_segments_per_segment_job"] == 1
    assert r.json()["guardrails"]["adhoc_jobs_per_day_per_org"] == 20
    too_many = sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}, {"segmentId": SEG_GOLD}],
                                timeout=5)
    assert too_many.status_code == 400
    bad = requests.put(sim.url("/simulator/config"), json={"speeed": 2}, timeout=5)
    assert bad.status_code == 400
    assert "speeed" in bad.json()["message"]


def test_the_fixture_is_served(sim: SimulatorHarness) -> None:
    fixture = requests.get(sim.url("/simulator/fixture"), timeout=5).json()
    assert SEG_US in [s["id"] for s in fixture["segments"]]
    assert [d["id"] for d in fixture["destinations"]] == [FLOW_A, FLOW_B]


def test_a_segment_job_quota_429_over_http_carries_retry_after(sim: SimulatorHarness) -> None:
    requests.put(sim.url("/simulator/config"), json={"guardrails": {"segment_jobs_per_day_per_sandbox": 0}},
                 timeout=5).raise_for_status()
    r = sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == str(12 * 3600)
    assert r.json()["error_code"] == "429001"

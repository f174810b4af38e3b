"""Fidelity fixes (issue 11 item 5) and list orders (issue 10 item 7), through the in-process dispatch:
ids written with Unicode digits get the documented 400/404 instead of a 500, the flow-run list speaks
the Flow Service's query language (property paths with [], AND, orderby, continuationToken, count),
and the configurable orders and page sizes answer as AEP's other documented orders would."""

from __future__ import annotations

from typing import Any

import pytest

from aep_activator.aep.api import paths
from aep_activator.aep.api.models import ADHOC_V2_ACCEPT
from aep_activator.aepsim import ManualClock, SimulatorConfig
from aep_activator.aepsim.testing import InProcessSessions, inprocess_session

NOON = 1710072000.0
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
SEG_GOLD = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
SEG_CART = "3a1b2c3d-4e5f-6789-abcd-ef0123456789"
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
FLOW_B = "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
SOURCE_A = "1d6b7dc0-6d54-464e-abb3-54fb9701cb29"  # FLOW_A's source connection (the fixture's, the spec's example)
EXPORT = {"destination": {"datasetId": "5b7c86968f7b6501e21ba9df"}, "schema": {"name": "_xdm.context.profile"}}


class Api:
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.clock = ManualClock(NOON)
        base = {"seed": 4, "guardrails": {"segment_jobs_per_day_per_sandbox": 100}}
        sessions, self.ctx = inprocess_session(SimulatorConfig.model_validate({**base, **(config or {})}), self.clock)
        self.sessions: InProcessSessions = sessions
        self.session = sessions()
        self.headers = {"Authorization": f"Bearer {self.ctx.config.static_token}", "x-api-key": "sim-client",
                        "x-gw-ims-org-id": self.ctx.state.fixture.orgId}

    def call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.session.request(method, self.sessions.base_url + path, headers=headers, timeout=5, **kw)

    def adhoc(self, flow: str, *audiences: str) -> str:
        r = self.call("POST", paths.ADHOC_RUN, json={"activationInfo": {flow: list(audiences)}},
                      headers={"Accept": ADHOC_V2_ACCEPT})
        assert r.status_code == 200, r.text
        run_id: str = r.json()["order"][0]["statusURL"].rsplit("/", 1)[1]
        return run_id

    def run_ids(self, **params: Any) -> list[str]:
        r = self.call("GET", paths.FLOW_RUNS, params=params)
        assert r.status_code == 200, r.text
        return [run["id"] for run in r.json()["items"]]


# ------------------------------------------------------------------------------------------ Unicode digits

SUPERSCRIPT_2 = "\u00b2"  # isdigit() but not int(): the 500 of issue 11
ARABIC_3 = "\u0663"
ARABIC_100 = "\u0661\u0660\u0660"  # int() reads it as 100, so an isdigit()/int() check found export job 100
UNICODE_IDS = [SUPERSCRIPT_2, ARABIC_3, ARABIC_100, "1" + SUPERSCRIPT_2]


@pytest.mark.parametrize("job_id", UNICODE_IDS)
def test_an_export_job_id_in_unicode_digits_is_a_404_for_get_and_delete(job_id: str) -> None:
    api = Api()
    assert api.call("POST", paths.EXPORT_JOBS, json=EXPORT).json()["id"] == 100
    for method in ("GET", "DELETE"):
        r = api.call(method, paths.EXPORT_JOB.format(id=job_id))
        assert r.status_code == 404, (method, r.text)
        assert job_id in r.json()["message"]
    assert api.call("GET", paths.EXPORT_JOB.format(id="100")).json()["status"] == "NEW", "the cancel did nothing"


@pytest.mark.parametrize("offset", [f"{SUPERSCRIPT_2}_100", f"1538573416687_{ARABIC_3}", f"{ARABIC_100}_{ARABIC_100}"])
def test_an_export_list_offset_in_unicode_digits_is_a_400(offset: str) -> None:
    r = Api().call("GET", paths.EXPORT_JOBS, params={"offset": offset})
    assert r.status_code == 400
    assert "Invalid offset" in r.json()["message"]


@pytest.mark.parametrize("export_id", UNICODE_IDS)
def test_adhoc_export_ids_in_unicode_digits_are_a_400_and_start_nothing(export_id: str) -> None:
    api = Api()
    api.call("POST", paths.EXPORT_JOBS, json=EXPORT)
    r = api.call("POST", paths.ADHOC_RUN, json={"activationInfo": {FLOW_A: [SEG_US]}, "exportIds": [export_id]})
    assert r.status_code == 400
    assert r.json() == {"message": f"Export job id(s) {export_id} not found"}
    assert api.ctx.state.flow_runs == {}


@pytest.mark.parametrize("value", [ARABIC_3, SUPERSCRIPT_2, " 3x", "-1"])
def test_a_list_limit_that_is_not_ascii_digits_is_a_400(value: str) -> None:
    r = Api().call("GET", paths.SEGMENT_JOBS, params={"limit": value})
    assert r.status_code == 400
    assert "'limit'" in r.json()["message"]


# ------------------------------------------------------------------------------------------ flow-run filters


def finished_runs(api: Api) -> tuple[str, str, str]:
    """Three finished runs: FLOW_A/SEG_US, FLOW_A/SEG_GOLD (failed), FLOW_B/SEG_CART."""
    a = api.adhoc(FLOW_A, SEG_US)
    api.ctx.apply_config({"failure_rates": {"activation_run": 1.0}})
    gold = api.adhoc(FLOW_A, SEG_GOLD)
    api.ctx.apply_config({"failure_rates": {"activation_run": 0.0}})
    b = api.adhoc(FLOW_B, SEG_CART)
    api.clock.advance(200)
    return a, gold, b


def test_the_specs_source_summaries_filter_matches_the_source_id_the_runs_carry() -> None:
    api = Api()
    a, gold, _ = finished_runs(api)
    # sourceSummaries[].id is the dataflow's source connection in every example run of the spec.
    assert set(api.run_ids(property=f"metrics.recordSummary.sourceSummaries[].id=={SOURCE_A}")) == {a, gold}
    # The spec's placeholder says <segmentId>, but no run carries a segment id there: nothing matches.
    assert api.run_ids(property=f"metrics.recordSummary.sourceSummaries[].id=={SEG_US}") == []
    # The audience is an entity: the sort-and-filter guide's lookup by audience.
    by_audience = f"metrics.recordSummary.targetSummaries[].entitySummaries[].id==segment:{SEG_GOLD}"
    assert api.run_ids(property=by_audience) == [gold]


def test_several_property_clauses_combine_with_and_in_either_documented_spelling() -> None:
    api = Api()
    a, gold, b = finished_runs(api)
    source = f"metrics.recordSummary.sourceSummaries[].id=={SOURCE_A}"
    assert api.run_ids(property=[source, "metrics.statusSummary.status==success"]) == [a]
    assert api.run_ids(property=f"{source}&metrics.statusSummary.status==Failed") == [gold]  # the spec's example form
    either_flow = f"flowId=={FLOW_A},{FLOW_B}"
    assert set(api.run_ids(property=[either_flow, "metrics.statusSummary.status!=failed"])) == {a, b}


def test_flow_id_clauses_give_the_same_runs_as_the_other_filters_with_or_without_the_pre_filter() -> None:
    from aep_activator.aepsim.state.queries import parse_properties, required_values

    api = Api()
    a, gold, b = finished_runs(api)
    assert set(api.run_ids(property=f"flowId=={FLOW_A}")) == {a, gold}
    assert api.run_ids(property=[f"flowId=={FLOW_A},{FLOW_B}", f"flowId=={FLOW_B}"]) == [b]  # AND of the two
    assert api.run_ids(property=[f"flowId=={FLOW_A}", f"flowId=={FLOW_B}"]) == []
    assert api.run_ids(property=f"flowId!={FLOW_A}") == [b]

    def parse(*texts: str) -> frozenset[str] | None:
        return required_values(parse_properties(texts, AssertionError), "flowId")

    assert parse(f"flowId=={FLOW_A},{FLOW_B}", f"flowId=={FLOW_B}") == {FLOW_B}
    assert parse(f"flowId!={FLOW_A}") is None and parse("metrics.statusSummary.status==success") is None
    assert parse("flowId==12") is None, "a value that reads as a number is compared as one: no exact set"


def test_a_list_by_status_renders_only_the_runs_in_that_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from aep_activator.aepsim.state.flow_runs import FlowRunRecord
    from aep_activator.aepsim.state.queries import parse_properties, required_values

    api = Api()
    _, gold, _ = finished_runs(api)
    render, rendered = FlowRunRecord.render, []

    def counted(self: FlowRunRecord, now: float) -> dict[str, Any]:
        rendered.append(self.id)
        return render(self, now)

    monkeypatch.setattr(FlowRunRecord, "render", counted)
    assert api.run_ids(property=[f"flowId=={FLOW_A}", "metrics.statusSummary.status==processing"]) == []
    assert rendered == [], "the preflight's list would otherwise render every run the dataflow ever had"
    assert api.run_ids(property="metrics.statusSummary.status==Failed") == [gold]
    assert rendered == [gold]
    status = "metrics.statusSummary.status"
    assert required_values(parse_properties([f"{status}==Failed,SUCCESS"], AssertionError), status) == {
        "failed", "success"}  # fmt: skip


@pytest.mark.parametrize("bad", ["flowId", "==x", "flowId==", "metrics..status==x", "a[]b==c"])
def test_a_malformed_property_filter_is_a_flow_service_400(bad: str) -> None:
    r = Api().call("GET", paths.FLOW_RUNS, params={"property": bad})
    assert r.status_code == 400
    assert r.json()["status"] == 400 and "property filter" in r.json()["errorMessage"]


def test_count_true_answers_the_number_of_matching_runs() -> None:
    api = Api()
    finished_runs(api)
    r = api.call("GET", paths.FLOW_RUNS, params={"property": f"flowId=={FLOW_A}", "count": "true"})
    assert r.json() == {"count": 2}


# ------------------------------------------------------------------------------------------ orders and pages


def test_runs_come_most_recently_updated_first_and_an_ending_run_moves_up() -> None:
    api = Api()
    old = api.adhoc(FLOW_A, SEG_US)  # ends at +180 s
    api.clock.advance(100)
    new = api.adhoc(FLOW_B, SEG_CART)  # created later, still processing at +200 s
    assert api.run_ids() == [new, old]
    api.clock.advance(100)
    assert api.run_ids() == [old, new], "old ended at +180 s, after new was created at +100 s"
    assert api.run_ids(orderby="createdAt") == [old, new]
    assert api.run_ids(orderby="-createdAt") == [new, old]


def test_the_default_run_order_is_configurable() -> None:
    api = Api({"lists": {"flow_runs_orderby": "+createdAt"}})
    first = api.adhoc(FLOW_A, SEG_US)
    api.clock.advance(1)
    second = api.adhoc(FLOW_B, SEG_CART)
    assert api.run_ids() == [first, second]


def test_run_pages_follow_links_next_until_every_run_was_served() -> None:
    api = Api({"lists": {"flow_runs_page_size": 2}})
    ids = []
    for flow, seg in [(FLOW_A, SEG_US), (FLOW_A, SEG_GOLD), (FLOW_B, SEG_CART), (FLOW_B, SEG_GOLD)]:
        ids.append(api.adhoc(flow, seg))
        api.clock.advance(1)
    seen: list[str] = []
    body = api.call("GET", paths.FLOW_RUNS, params={"limit": 50}).json()
    while True:
        seen += [r["id"] for r in body["items"]]
        assert len(body["items"]) <= 2
        if not body["_links"]:
            break
        body = api.call("GET", paths.FLOW_SERVICE + body["_links"]["next"]["href"]).json()
    assert seen == list(reversed(ids))


def test_a_foreign_or_broken_continuation_token_is_a_400() -> None:
    api = Api({"lists": {"flow_runs_page_size": 1}})
    api.adhoc(FLOW_A, SEG_US)
    api.adhoc(FLOW_B, SEG_CART)
    token = api.call("GET", paths.FLOW_RUNS).json()["_links"]["next"]["href"].split("continuationToken=")[1]
    assert api.call("GET", paths.FLOW_RUNS, params={"continuationToken": token}).status_code == 200
    foreign = {"continuationToken": token, "orderby": "createdAt"}
    assert api.call("GET", paths.FLOW_RUNS, params=foreign).status_code == 400
    assert api.call("GET", paths.FLOW_RUNS, params={"continuationToken": "%%%"}).status_code == 400


def test_segment_jobs_list_in_the_configured_order_and_page_size() -> None:
    api = Api({"lists": {"segment_jobs_sort": "creationTime:asc", "segment_jobs_page_size": 2}})
    ids = []
    for seg in (SEG_US, SEG_GOLD, SEG_CART):
        ids.append(api.call("POST", paths.SEGMENT_JOBS, json=[{"segmentId": seg}]).json()["id"])
        api.clock.advance(1)
    first = api.call("GET", paths.SEGMENT_JOBS, params={"limit": 100}).json()
    assert [j["id"] for j in first["children"]] == ids[:2]
    assert first["_page"]["totalCount"] == 3
    second = api.call("GET", paths.UPS + first["_links"]["next"]["href"]).json()
    assert [j["id"] for j in second["children"]] == ids[2:]
    desc = api.call("GET", paths.SEGMENT_JOBS, params={"sort": "creationTime:desc", "start": 0}).json()
    assert [j["id"] for j in desc["children"]] == [ids[2], ids[1]], "a request's own sort wins"


def test_export_jobs_list_newest_first_in_the_configured_page_size_with_a_status_filter() -> None:
    api = Api({"lists": {"export_jobs_page_size": 1}})
    ids = []
    for _ in range(3):
        ids.append(api.call("POST", paths.EXPORT_JOBS, json=EXPORT).json()["id"])
        api.clock.advance(1)
    seen, params = [], {"limit": 10, "status": "NEW"}
    while True:
        body = api.call("GET", paths.EXPORT_JOBS, params=params).json()
        seen += [r["id"] for r in body["records"]]
        if not body["link"]["next"]:
            break
        params = {**params, "offset": body["link"]["next"].split("offset=")[1].split("&")[0]}
    assert seen == list(reversed(ids))
    assert api.call("GET", paths.EXPORT_JOBS, params={"status": "SUCCEEDED"}).json()["records"] == []

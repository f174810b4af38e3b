"""Every documented example body the simulator serves has the same field names and JSON types in what
the simulator produces (values and ids may differ). Examples are copied from aep-api.md / the tutorial.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from aep_activator.aepsim import ManualClock, SimulatorConfig
from aep_activator.aepsim.testing import SimulatorHarness

pytestmark = pytest.mark.integration

NOON = 1710072000.0
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"
EXPORT_JOBS = "/data/core/ups/export/jobs"
ADHOC = "/data/core/activation/disflowprovider/adhocrun"
V2 = "application/vnd.adobe.adhoc.activation+json; version=2"

# Keys whose objects are maps keyed by ids or namespaces: only the value shapes are compared.
MAPS = frozenset({"segmentedProfileCounter", "segmentedProfileByNamespaceCounter",
                  "segmentedProfileByStatusCounter", "totalProfilesByMergePolicy",
                  "exportedProfileByNamespaceCounter", "extensions"})


def assert_same_shape(example: Any, actual: Any, path: str = "$") -> None:
    """Same keys at every level, same JSON type at every leaf (bool is not int)."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        missing, extra = set(example) - set(actual), set(actual) - set(example)
        assert not missing, f"{path}: missing {sorted(missing)}"
        assert not extra, f"{path}: extra {sorted(extra)}"
        for key, value in example.items():
            if key in MAPS:
                assert isinstance(actual[key], dict), f"{path}.{key}: expected a map"
                if value:
                    sample = next(iter(value.values()))
                    for k, v in actual[key].items():
                        assert_map_value(sample, v, f"{path}.{key}.{k}")
            else:
                assert_same_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        assert bool(example) == bool(actual), f"{path}: emptiness differs"
        pairs = zip(example, actual, strict=True) if len(example) == len(actual) else (
            (example[0], a) for a in actual)
        for i, (e, a) in enumerate(pairs):
            assert_same_shape(e, a, f"{path}[{i}]")
    else:
        assert type(example) is type(actual), f"{path}: {type(example).__name__} vs {type(actual).__name__}"


def assert_map_value(sample: Any, actual: Any, path: str) -> None:
    if isinstance(sample, dict):
        assert isinstance(actual, dict), path
        inner = next(iter(sample.values()))
        for k, v in actual.items():
            assert type(v) is type(inner), f"{path}.{k}"
    else:
        assert type(sample) is type(actual), path


# ------------------------------------------------------------------------------------------ the examples

SEGMENT_JOB_CREATED = json.loads("""{
    "id": "d3b4a50d-dfea-43eb-9fca-557ea53771fd", "imsOrgId": "{IMS_ORG}",
    "sandbox": {"sandboxId": "28e74200-e3de-11e9-8f5d-7f27416c5f0d", "sandboxName": "prod",
                "type": "production", "default": true},
    "profileInstanceId": "ups", "source": "api", "status": "NEW",
    "segments": [{"segmentId": "4afe34ae-8c98-4513-8a1d-67ccaa54bc05",
                  "segment": {"id": "4afe34ae-8c98-4513-8a1d-67ccaa54bc05",
                              "expression": {"type": "PQL", "format": "pql/text",
                                  "value": "workAddress.country = \\"US\\""},
                              "mergePolicyId": "e161dae9-52f0-4c7f-b264-dc43dd903d56",
                              "mergePolicy": {"id": "e161dae9-52f0-4c7f-b264-dc43dd903d56", "version": 1}}}],
    "requestId": "Hw1jdAHeuWHVKVxcAPFrLCbbjkriDl9v", "schema": {"name": "_xdm.context.profile"},
    "_links": {"cancel": {"href": "/segment/jobs/d3b4a50d", "method": "DELETE"},
               "checkStatus": {"href": "/segment/jobs/d3b4a50d", "method": "GET"}},
    "updateTime": 1579304260000, "creationTime": 1579304260897, "updateEpoch": 1579304260
}""")

# The reference doc's GET example: processing fields and a nearly empty metrics block.
SEGMENT_JOB_GOT = {
    **SEGMENT_JOB_CREATED, "status": "PROCESSING", "batchId": "651fc109-3963-48d2-aa98-9e3cc2003bac",
    "computeJobId": 39312, "computeGatewayJobId": "a0099ab6-11ab-4c2b-a0ea-6162e16806bd",
    "metrics": {"totalTime": {"startTimeInMs": 1579304313411}, "profileSegmentationTime": {}},
}

SEGMENT_JOB_FULL_METRICS = json.loads("""{
    "totalTime": {"startTimeInMs": 1573203617195, "endTimeInMs": 1573204395655, "totalTimeInMs": 778460},
    "profileSegmentationTime": {"startTimeInMs": 1573204266727, "endTimeInMs": 1573204395655,
        "totalTimeInMs": 128928},
    "totalProfiles": 13146432,
    "segmentedProfileCounter": {"94509dba-7387-452f-addc-5d8d979f6ae8": 1033},
    "segmentedProfileByNamespaceCounter": {"94509dba": {"tenantiduserobjid": 1033, "campaign_profile": 1033}},
    "segmentedProfileByStatusCounter": {"94509dba": {"exited": 144646, "existing": 10, "realized": 2056}},
    "totalProfilesByMergePolicy": {"25c548a0-ca7f-4dcd-81d5-997642f178b9": 13146432}
}""")

SEGMENT_JOB_LIST = {"_page": {"totalCount": 14, "pageSize": 14}, "children": [SEGMENT_JOB_CREATED],
                    "_links": {"next": {}}}

EXPORT_REQUEST = json.loads("""{
    "fields": "identities.id,personalEmail.address",
    "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1},
    "filter": {"segments": [{"segmentId": "4afe34ae-8c98-4513-8a1d-67ccaa54bc05", "segmentNs": "ups",
        "status": ["realized"]}],
               "segmentQualificationTime": {"startTime": "2018-01-01T00:00:00Z",
                   "endTime": "2018-02-01T00:00:00Z"},
               "fromIngestTimestamp": "2018-01-01T00:00:00Z", "emptyProfiles": true},
    "additionalFields": {"eventList": {"fields": "string",
        "filter": {"fromIngestTimestamp": "2018-01-01T00:00:00Z",
                   "toIngestTimestamp": "2020-01-01T00:00:00Z"}}},
    "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": false},
    "schema": {"name": "_xdm.context.profile"},
    "evaluationInfo": {"segmentation": true}
}""")

# The tutorial's create answer (its trailing comma after startTimeInMs removed; the echoed
# additionalFields follow the request, which also carries toIngestTimestamp).
EXPORT_JOB_CREATED = json.loads("""{
    "id": 12345, "jobType": "BATCH",
    "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": false,
                    "batchId": "da5cfb4de32c4b93a09f7e37fa53ad52"},
    "fields": "identities.id,personalEmail.address", "schema": {"name": "_xdm.context.profile"},
    "imsOrgId": "{IMS_ORG}", "status": "NEW",
    "filter": {"segments": [{"segmentId": "4afe34ae", "segmentNs": "ups", "status": ["realized"]}],
               "segmentQualificationTime": {"startTime": "2018-01-01T00:00:00Z",
                   "endTime": "2018-02-01T00:00:00Z"},
               "fromIngestTimestamp": "2018-01-01T00:00:00Z", "emptyProfiles": true},
    "additionalFields": {"eventList": {"fields": "_id, _experience", "filter": {
        "fromIngestTimestamp": "2018-01-01T00:00:00Z", "toIngestTimestamp": "2020-01-01T00:00:00Z"}}},
    "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1}, "profileInstanceId": "ups",
    "metrics": {"totalTime": {"startTimeInMs": 123456789000}},
    "computeGatewayJobId": {"exportJob": ""},
    "creationTime": 1538615973895, "updateTime": 1538616233239,
        "requestId": "d995479c-8a08-4240-903b-af469c67be1f"
}""")

EXPORT_JOB_SUCCEEDED = json.loads("""{
    "id": 11037, "jobType": "BATCH",
    "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": false, "batchId": "da5cfb4d"},
    "fields": "identities.id,personalEmail.address", "schema": {"name": "_xdm.context.profile"},
    "imsOrgId": "{ORG_ID}", "status": "SUCCEEDED",
    "filter": {"segments": [{"segmentId": "52c26d0d", "segmentNs": "ups", "status": ["realized"]}]},
    "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1}, "profileInstanceId": "ups",
    "metrics": {"totalTime": {"startTimeInMs": 123456789000, "endTimeInMs": 123456799000,
        "totalTimeInMs": 10000},
                "profileExportTime": {"startTimeInMs": 123456789000, "endTimeInMs": 123456799000,
                    "totalTimeInMs": 10000},
                "totalExportedProfileCounter": 20,
                "exportedProfileByNamespaceCounter": {"namespace1": 10, "namespace2": 5}},
    "computeGatewayJobId": {"exportJob": "f3058161-7349-4ca9-807d-212cee2c2e94"},
    "creationTime": 1538615973895, "updateTime": 1538616233239,
        "requestId": "d995479c-8a08-4240-903b-af469c67be1f"
}""")

EXPORT_JOB_FAILED = json.loads("""{
    "profileInstanceId": "ups",
    "errors": [{"code": "0090000009", "msg": "Error writing profiles", "callStack": "com.adobe.Logger"},
               {"code": "unknown", "msg": "Job aborted.", "callStack": "org.apache.spark.SparkException"}],
    "jobType": "BATCH",
    "filter": {"segments": [{"segmentId": "52c26d0d", "segmentNs": "AAM", "status": ["realized",
        "existing"]}]},
    "id": 722, "schema": {"name": "_xdm.context.profile"},
    "mergePolicy": {"id": "7972e3d6-96ea-4ece-9627-cbfd62709c5d", "version": 1},
    "status": "FAILED", "requestId": "KbOAsV7HXmdg262lc4yZZhoml27UWXPZ",
    "computeGatewayJobId": {"exportJob": "15971e0f-317c-4390-9038-1a0498eb356f"},
    "metrics": {"totalTime": {"startTimeInMs": 1538573416687, "endTimeInMs": 1538573922551,
        "totalTimeInMs": 505864},
                "profileExportTime": {"startTimeInMs": 1538573872211, "endTimeInMs": 1538573918809,
                    "totalTimeInMs": 46598}},
    "destination": {"datasetId": "5bb4c46757920712f924a3eb", "segmentPerBatch": false, "batchId": "IWEQ69"},
    "updateTime": 1538573922551, "imsOrgId": "1BD6382559DF0C130A49422D@AdobeOrg",
        "creationTime": 1538573416687
}""")

EXPORT_JOB_LIST = {"records": [EXPORT_JOB_SUCCEEDED],
                   "page": {"sortField": "createdTime", "sort": "desc", "pageOffset": "1540974701302_96",
                       "pageSize": 2},
                   "link": {"next": "/export/jobs/?limit=2&offset=1538573416687_722"}}

EXPORT_CANCELLED = {"status": True, "message": "Export job has been marked for cancelling"}

ADHOC_ORDER = {"order": [{"segment": "db8961e9-d52f-45bc-b3fb-76d0382a6851",
                          "order": "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb",
                          "statusURL": "https://platform.adobe.io/data/foundation/flowservice/runs/88d6da63"}]}

FLOW_RUN_SUCCESS = json.loads("""{"items": [{
  "id": "e80e24c1-82de-48de-8352-b2d0fca1c392", "createdAt": 1659018528378, "updatedAt": 1659019046995,
  "createdBy": "example_id@AdobeID", "updatedBy": "example_id@AdobeID",
  "createdClient": "exampleClient", "updatedClient": "example_client",
  "sandboxId": "d9df072c-2d5c-4247-9f07-2c2d5cd247b6", "sandboxName": "prod",
  "imsOrgId": "F0935E09512D2C270A490D4D@AdobeOrg", "flowId": "df8d079d-11eb-466a-9731-6b5948a009e4",
  "flowSpec": {"id": "71471eba-b620-49e4-90fd-23f1fa0174d8", "version": "1.0"},
  "providerRefId": "fd3319ed56fdf9417d63d364a07b0105", "etag": "\\"b500a099-0000-0200-0000-62e29f270000\\"",
  "metrics": {
    "durationSummary": {"startedAtUTC": 1659018529865, "completedAtUTC": 1659018929923},
    "sizeSummary": {"inputBytes": 855202780, "outputBytes": 855202780},
    "recordSummary": {
      "inputRecordCount": 7823447, "createdRecordCount": 7808223, "outputRecordCount": 7808223,
      "skippedRecordCount": 15224,
      "sourceSummaries": [{"id": "1d6b7dc0", "inputRecordCount": 7823447, "skippedRecordCount": 15224,
         "entitySummaries": [{"id": "segment:b1cbaff7", "inputRecordCount": 7823447,
             "skippedRecordCount": 15224}]}],
      "targetSummaries": [{"id": "f876fe0d", "createdRecordCount": 7808223, "outputRecordCount": 7808223,
         "entitySummaries": [{"id": "segment:b1cbaff7", "createdRecordCount": 7808223,
             "outputRecordCount": 7808223}]}],
      "skippedInfo": [{"code": "ACTIVATION_BATCH-0000-SKIP",
          "message": "Records didn't match attribute filter.",
                       "count": 15224}]
    },
    "fileSummary": {"inputFileCount": 2, "outputFileCount": 2},
    "statusSummary": {"status": "success", "activityRefs": ["c4f238e3-7334-4933-8b56-64d7ea43ea54"]}
  },
  "activities": [
    {"id": "c4f238e3", "name": "Activation Batch XdmProcessor Activity",
     "statusSummary": {"status": "success",
         "extensions": {"snapshot.batchId": "01G91QNJWFWD2588D4G4GZP9G1"}}},
    {"id": "51d82b36", "name": "Activation Batch Publisher Activity",
     "statusSummary": {"status": "success", "extensions": {}}}
  ]
}]}""")

FLOW_RUN_FAILED_STATUS = {"status": "failed", "errors": [{"code": "ACTIVATION_BATCH-0000-FAILED",
                                                          "message": "Job aborted."}],
                          "activityRefs": ["c4f238e3-7334-4933-8b56-64d7ea43ea54"]}

IMS_TOKEN = {"access_token": "{ACCESS_TOKEN}", "token_type": "bearer", "expires_in": 86399}
GATEWAY_429 = {"error_code": "429050", "message": "Too many requests"}
GATEWAY_401 = {"error_code": "401013", "message": "Oauth token is not valid"}
ADHOC_400 = {"message": "Run already going on for audience {segmentId} for order {dataflowId} "
                        "with run id {flowRunId}"}


# ------------------------------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHarness]:
    with SimulatorHarness(SimulatorConfig(seed=5), ManualClock(NOON)) as h:
        yield h


@pytest.fixture
def clock(sim: SimulatorHarness) -> ManualClock:
    clock = sim.server.ctx.clock
    assert isinstance(clock, ManualClock)
    return clock


def get(sim: SimulatorHarness, path: str) -> Any:
    return sim.session.get(sim.url(path), timeout=5).json()


def restart(sim: SimulatorHarness, **config: Any) -> None:
    sim.restart_with(SimulatorConfig.model_validate({"seed": 5, **config}))


def test_segment_job_create_get_list_and_full_metrics_match_the_examples(sim: SimulatorHarness,
                                                                         clock: ManualClock) -> None:
    restart(sim)
    created = sim.session.post(sim.url(SEGMENT_JOBS), json=[{"segmentId": SEG_US}], timeout=5).json()
    assert_same_shape(SEGMENT_JOB_CREATED, created)
    assert_same_shape(SEGMENT_JOB_LIST, get(sim, SEGMENT_JOBS))
    clock.advance(300)
    assert_same_shape(SEGMENT_JOB_GOT, get(sim, f"{SEGMENT_JOBS}/{created['id']}"))
    clock.advance(600)
    done = get(sim, f"{SEGMENT_JOBS}/{created['id']}")
    assert_same_shape(SEGMENT_JOB_FULL_METRICS, done["metrics"])


def test_export_job_create_succeeded_list_and_cancel_match_the_examples(sim: SimulatorHarness,
                                                                        clock: ManualClock) -> None:
    restart(sim)
    created = sim.session.post(sim.url(EXPORT_JOBS), json=EXPORT_REQUEST, timeout=5).json()
    assert_same_shape(EXPORT_JOB_CREATED, created)
    plain = {k: EXPORT_REQUEST[k] for k in ("fields", "mergePolicy", "destination", "schema")}
    plain["filter"] = {"segments": EXPORT_REQUEST["filter"]["segments"]}
    job_id = sim.session.post(sim.url(EXPORT_JOBS), json=plain, timeout=5).json()["id"]
    sim.session.post(sim.url(EXPORT_JOBS), json=plain, timeout=5)
    clock.advance(300)
    assert_same_shape(EXPORT_JOB_SUCCEEDED, get(sim, f"{EXPORT_JOBS}/{job_id}"))
    listed = sim.session.get(sim.url(EXPORT_JOBS), params={"limit": 1}, timeout=5).json()
    assert_same_shape(EXPORT_JOB_LIST, listed)
    fresh = sim.session.post(sim.url(EXPORT_JOBS), json=plain, timeout=5).json()["id"]
    cancelled = sim.session.delete(sim.url(f"{EXPORT_JOBS}/{fresh}"), timeout=5).json()
    assert_same_shape(EXPORT_CANCELLED, cancelled)


def test_a_failed_export_job_matches_the_example(sim: SimulatorHarness, clock: ManualClock) -> None:
    restart(sim, failure_rates={"export_job": 1.0})
    body = {"mergePolicy": {"id": "7972e3d6-96ea-4ece-9627-cbfd62709c5d", "version": 1},
            "filter": {"segments": [{"segmentId": SEG_US, "status": ["realized", "existing"]}]},
            "destination": {"datasetId": "5bb4c46757920712f924a3eb"},
                "schema": {"name": "_xdm.context.profile"}}
    job_id = sim.session.post(sim.url(EXPORT_JOBS), json=body, timeout=5).json()["id"]
    clock.advance(300)
    assert_same_shape(EXPORT_JOB_FAILED, get(sim, f"{EXPORT_JOBS}/{job_id}"))


def test_the_adhoc_order_and_the_flow_runs_match_the_examples(sim: SimulatorHarness,
                                                             clock: ManualClock) -> None:
    restart(sim)
    order = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}},
                             headers={"Accept": V2}, timeout=5).json()
    assert_same_shape(ADHOC_ORDER, order)
    conflict = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}},
                                headers={"Accept": V2}, timeout=5).json()
    assert_same_shape(ADHOC_400, conflict)
    clock.advance(180)
    assert_same_shape(FLOW_RUN_SUCCESS, sim.session.get(order["order"][0]["statusURL"], timeout=5).json())


def test_a_failed_flow_run_matches_the_example_status_summary(sim: SimulatorHarness,
                                                              clock: ManualClock) -> None:
    restart(sim, failure_rates={"activation_run": 1.0})
    order = sim.session.post(sim.url(ADHOC), json={"activationInfo": {FLOW_A: [SEG_US]}},
                             headers={"Accept": V2}, timeout=5).json()
    clock.advance(180)
    run = sim.session.get(order["order"][0]["statusURL"], timeout=5).json()["items"][0]
    assert_same_shape(FLOW_RUN_FAILED_STATUS, run["metrics"]["statusSummary"])
    assert run["metrics"]["recordSummary"]["failedInfo"] == FLOW_RUN_FAILED_STATUS["errors"]


def test_the_ims_token_and_gateway_error_bodies_match_the_examples(sim: SimulatorHarness) -> None:
    restart(sim, endpoint_faults={f"GET {SEGMENT_JOBS}": {"rate_429": 1.0}})
    token = requests.post(sim.url("/ims/token/v3"), timeout=5, data={
        "grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "sim-secret",
        "scope": "openid"}).json()
    assert_same_shape(IMS_TOKEN, token)
    assert_same_shape(GATEWAY_429, get(sim, SEGMENT_JOBS))
    bad = requests.get(sim.url(f"{SEGMENT_JOBS}/x"), headers=sim.headers(token="expired"), timeout=5).json()
    assert_same_shape(GATEWAY_401, bad)


def test_the_shape_comparison_notices_a_renamed_field_or_a_changed_type() -> None:
    with pytest.raises(AssertionError, match="missing"):
        assert_same_shape({"status": "NEW"}, {"state": "NEW"})
    with pytest.raises(AssertionError, match="int vs str"):
        assert_same_shape({"id": 100}, {"id": "100"})
    with pytest.raises(AssertionError, match="bool vs int"):
        assert_same_shape({"default": True}, {"default": 1})

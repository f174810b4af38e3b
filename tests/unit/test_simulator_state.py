"""The simulator's pure state machine, driven by a ManualClock: transitions, metrics, guardrails, quotas."""

from __future__ import annotations

import pytest

from aep_activator.aep.api.models import (
    ExportJob,
    ExportJobCreate,
    FlowRun,
    SegmentJob,
)
from aep_activator.aepsim import Guardrails, ManualClock, SimulatorConfig, SimulatorState
from aep_activator.aepsim.config import FailureRates
from aep_activator.aepsim.state.clock import seconds_until_next_utc_midnight, utc_day
from aep_activator.aepsim.state.errors import SimError

NOON = 1710072000.0  # 2024-03-10T12:00:00Z
SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"  # the tutorial's segment, mapped to FLOW_A
SEG_GOLD = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"  # mapped to both flows
SEG_CART = "3a1b2c3d-4e5f-6789-abcd-ef0123456789"  # mapped to FLOW_B
SEG_UNMAPPED = "db8961e9-d52f-45bc-b3fb-76d0382a6851"  # mapped to no flow
FLOW_A = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
FLOW_B = "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
DATASET = "5b7c86968f7b6501e21ba9df"


def make_state(clock: ManualClock, **config: object) -> SimulatorState:
    return SimulatorState(SimulatorConfig.model_validate({"seed": 7, **config}), clock)


def export_request(*segments: str) -> ExportJobCreate:
    return ExportJobCreate.model_validate({
        "destination": {"datasetId": DATASET}, "schema": {"name": "_xdm.context.profile"},
        "filter": {"segments": [{"segmentId": s} for s in segments]}})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)


# ------------------------------------------------------------------------------------------ segment jobs


def test_a_segment_job_walks_new_queued_processing_succeeded_as_time_passes(clock: ManualClock) -> None:
    state = make_state(clock)
    job = state.create_segment_job([SEG_US])
    assert job["status"] == "NEW"
    assert "metrics" not in job
    assert job["source"] == "api"
    statuses = []
    for step in (4, 2, 60, 700, 20):
        clock.advance(step)
        statuses.append(state.get_segment_job(job["id"])["status"])
    assert statuses == ["NEW", "QUEUED", "PROCESSING", "PROCESSING", "SUCCEEDED"]


def test_segment_job_metrics_start_with_the_start_time_and_complete_on_success(clock: ManualClock) -> None:
    state = make_state(clock)
    job_id = state.create_segment_job([SEG_US])["id"]
    clock.advance(100)
    processing = state.get_segment_job(job_id)
    assert processing["metrics"] == {"totalTime": {"startTimeInMs": int(NOON * 1000)},
                                     "profileSegmentationTime": {}}
    assert {"batchId", "computeJobId", "computeGatewayJobId"} <= processing.keys()
    clock.advance(1000)
    done = SegmentJob.model_validate(state.get_segment_job(job_id))
    assert done.metrics is not None
    assert done.metrics.totalTime is not None
    assert done.metrics.totalTime.totalTimeInMs == 780_000
    assert done.metrics.segmentedProfileCounter == {SEG_US: 1033}
    assert done.errors == []


def test_a_failing_segment_job_ends_failed_with_code_msg_and_call_stack(clock: ManualClock) -> None:
    state = make_state(clock, failure_rates={"segment_job": 1.0})
    job_id = state.create_segment_job([SEG_US])["id"]
    clock.advance(780)
    job = SegmentJob.model_validate(state.get_segment_job(job_id))
    assert job.status == "FAILED"
    assert job.errors
    assert job.errors[0].code
    assert job.errors[0].msg
    assert job.errors[0].callStack


def test_cancelling_a_running_segment_job_goes_cancelling_then_cancelled(clock: ManualClock) -> None:
    state = make_state(clock)
    job_id = state.create_segment_job([SEG_US])["id"]
    clock.advance(100)
    assert state.cancel_segment_job(job_id)["status"] == "CANCELLING"
    clock.advance(10)
    assert state.get_segment_job(job_id)["status"] == "CANCELLED"
    clock.advance(10_000)
    assert state.get_segment_job(job_id)["status"] == "CANCELLED"


def test_cancelling_a_finished_segment_job_changes_nothing(clock: ManualClock) -> None:
    state = make_state(clock)
    job_id = state.create_segment_job([SEG_US])["id"]
    clock.advance(800)
    assert state.cancel_segment_job(job_id)["status"] == "SUCCEEDED"


def test_a_segment_job_with_more_than_twenty_segment_ids_is_rejected(clock: ManualClock) -> None:
    state = make_state(clock)
    with pytest.raises(SimError) as err:
        state.create_segment_job([f"seg-{i}" for i in range(21)])
    assert err.value.status == 400
    assert "at most 20" in str(err.value.body)


def test_unknown_segment_ids_are_rejected_naming_them(clock: ManualClock) -> None:
    state = make_state(clock)
    with pytest.raises(SimError) as err:
        state.create_segment_job([SEG_US, "nope-1"])
    assert err.value.status == 400
    assert "nope-1" in str(err.value.body)


def test_an_unknown_segment_job_id_is_a_404(clock: ManualClock) -> None:
    with pytest.raises(SimError) as err:
        make_state(clock).get_segment_job("missing")
    assert err.value.status == 404


def test_speed_divides_every_duration(clock: ManualClock) -> None:
    state = make_state(clock, speed=600)
    job_id = state.create_segment_job([SEG_US])["id"]
    clock.advance(1.29)
    assert state.get_segment_job(job_id)["status"] == "PROCESSING"
    clock.advance(0.02)
    assert state.get_segment_job(job_id)["status"] == "SUCCEEDED"


# ------------------------------------------------------------------------------------------ quotas


def test_the_third_segment_job_of_a_utc_day_in_a_sandbox_gets_429_until_midnight(clock: ManualClock) -> None:
    clock.set(NOON + 11 * 3600)  # 23:00 UTC
    state = make_state(clock)
    state.create_segment_job([SEG_US])
    state.create_segment_job([SEG_GOLD])
    with pytest.raises(SimError) as err:
        state.create_segment_job([SEG_CART])
    assert err.value.status == 429
    assert err.value.body is not None
    assert err.value.body["error_code"] == "429001"
    assert err.value.headers["Retry-After"] == "3600"
    state.create_segment_job([SEG_CART], sandbox_name="dev")  # another sandbox has its own quota
    clock.advance(3600)  # 00:00 UTC the next day
    state.create_segment_job([SEG_CART])


def test_a_rejected_segment_job_request_consumes_no_quota(clock: ManualClock) -> None:
    state = make_state(clock)
    for _ in range(5):
        with pytest.raises(SimError):
            state.create_segment_job(["unknown"])
    state.create_segment_job([SEG_US])
    state.create_segment_job([SEG_US])


def test_adhoc_jobs_are_limited_per_org_per_utc_day(clock: ManualClock) -> None:
    clock.set(NOON + 12 * 3600 - 30)  # 23:59:30 UTC
    state = make_state(clock, guardrails={"adhoc_jobs_per_day_per_org": 2}, speed=1000)
    for _ in range(2):
        state.start_adhoc_run({FLOW_A: [SEG_US]})
        clock.advance(1)  # the run (0.18 s at speed 1000) is over, so no "Run already going on"
    with pytest.raises(SimError) as err:
        state.start_adhoc_run({FLOW_A: [SEG_US]})
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "28"
    clock.advance(28)
    assert utc_day(clock.now()) == "2024-03-11"
    state.start_adhoc_run({FLOW_A: [SEG_US]})


def test_seconds_until_midnight_is_at_least_one() -> None:
    assert seconds_until_next_utc_midnight(NOON) == 12 * 3600
    assert seconds_until_next_utc_midnight(NOON + 12 * 3600 - 0.2) == 1


# ------------------------------------------------------------------------------------------ export jobs


def test_an_export_job_walks_new_processing_succeeded_and_echoes_the_request(clock: ManualClock) -> None:
    state = make_state(clock)
    created = state.create_export_job(export_request(SEG_US))
    assert created["status"] == "NEW"
    assert isinstance(created["id"], int)
    assert created["computeGatewayJobId"] == {"exportJob": ""}
    assert created["filter"]["segments"][0]["segmentId"] == SEG_US
    assert created["mergePolicy"] == {"id": "e161dae9-52f0-4c7f-b264-dc43dd903d56", "version": 1}
    clock.advance(10)
    assert state.get_export_job(str(created["id"]))["status"] == "PROCESSING"
    clock.advance(300)
    done = ExportJob.model_validate(state.get_export_job(str(created["id"])))
    assert done.status == "SUCCEEDED"
    assert done.metrics is not None
    assert done.metrics.totalExportedProfileCounter == 1033


def test_export_job_ids_are_incrementing_integers(clock: ManualClock) -> None:
    state = make_state(clock)
    ids = [state.create_export_job(export_request(SEG_US))["id"] for _ in range(3)]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]


def test_a_failing_export_job_carries_errors(clock: ManualClock) -> None:
    state = make_state(clock, failure_rates={"export_job": 1.0})
    job_id = str(state.create_export_job(export_request(SEG_US))["id"])
    clock.advance(300)
    job = ExportJob.model_validate(state.get_export_job(job_id))
    assert job.status == "FAILED"
    assert len(job.errors) == 2


def test_cancelling_an_export_job_answers_the_documented_body_and_ends_cancelled(clock: ManualClock) -> None:
    state = make_state(clock)
    job_id = str(state.create_export_job(export_request(SEG_US))["id"])
    body = state.cancel_export_job(job_id)
    assert body == {"status": True, "message": "Export job has been marked for cancelling"}
    assert state.get_export_job(job_id)["status"] == "CANCELLING"
    clock.advance(10)
    assert state.get_export_job(job_id)["status"] == "CANCELLED"


def test_export_job_list_pages_newest_first_by_opaque_offset(clock: ManualClock) -> None:
    state = make_state(clock)
    ids = []
    for _ in range(5):
        ids.append(state.create_export_job(export_request(SEG_US))["id"])
        clock.advance(1)
    page, nxt = state.list_export_jobs(limit=2)
    assert [r["id"] for r in page] == [ids[4], ids[3]]
    assert nxt is not None
    page2, nxt2 = state.list_export_jobs(limit=2, offset=nxt)
    page3, nxt3 = state.list_export_jobs(limit=2, offset=nxt2)
    assert [r["id"] for r in page2 + page3] == [ids[2], ids[1], ids[0]]
    assert nxt3 is None


# ------------------------------------------------------------------------------------------ ad-hoc runs


def test_an_adhoc_request_starts_one_run_per_destination_audience_pair(clock: ManualClock) -> None:
    state = make_state(clock)
    started = state.start_adhoc_run({FLOW_A: [SEG_US, SEG_GOLD], FLOW_B: [SEG_GOLD]})
    pairs = [(s.order, s.segment) for s in started]
    assert pairs == [(FLOW_A, SEG_US), (FLOW_A, SEG_GOLD), (FLOW_B, SEG_GOLD)]
    run = FlowRun.model_validate(state.get_flow_run(started[0].run_id))
    assert run.status == "processing"
    assert run.flowId == FLOW_A
    assert run.metrics.recordSummary == {}
    clock.advance(180)
    done = state.get_flow_run(started[0].run_id)
    assert done["metrics"]["statusSummary"]["status"] == "success"
    entity = done["metrics"]["recordSummary"]["sourceSummaries"][0]["entitySummaries"][0]["id"]
    assert entity == f"segment:{SEG_US}"
    assert done["metrics"]["durationSummary"]["completedAtUTC"] == int((NOON + 180) * 1000)


def test_a_failing_run_reports_failed_with_errors(clock: ManualClock) -> None:
    state = make_state(clock, failure_rates={"activation_run": 1.0})
    run_id = state.start_adhoc_run({FLOW_A: [SEG_US]})[0].run_id
    clock.advance(180)
    summary = state.get_flow_run(run_id)["metrics"]["statusSummary"]
    assert summary["status"] == "failed"
    assert summary["errors"] == [{"code": "ACTIVATION_BATCH-0000-FAILED", "message": "Job aborted."}]


def test_a_second_request_for_a_running_audience_gets_the_verbatim_400(clock: ManualClock) -> None:
    state = make_state(clock)
    run_id = state.start_adhoc_run({FLOW_A: [SEG_US]})[0].run_id
    clock.advance(60)
    with pytest.raises(SimError) as err:
        state.start_adhoc_run({FLOW_A: [SEG_US]})
    assert err.value.status == 400
    assert err.value.body == {
        "message": f"Run already going on for audience {SEG_US} for order {FLOW_A} with run id {run_id}"}
    state.start_adhoc_run({FLOW_B: [SEG_GOLD]})  # other pairs are free
    clock.advance(120)
    state.start_adhoc_run({FLOW_A: [SEG_US]})  # the first run finished


def test_audiences_not_mapped_to_the_dataflow_get_the_verbatim_400(clock: ManualClock) -> None:
    state = make_state(clock)
    with pytest.raises(SimError) as err:
        state.start_adhoc_run({FLOW_A: [SEG_US, SEG_UNMAPPED, SEG_CART]})
    assert err.value.status == 400
    assert err.value.body == {"message": f"Segments {SEG_UNMAPPED}, {SEG_CART} are not part of this dataflow "
                                         "or out of schedule range!"}
    assert state.flow_runs == {}


def test_more_than_eighty_audiences_in_one_adhoc_job_are_rejected(clock: ManualClock) -> None:
    state = make_state(clock)
    with pytest.raises(SimError) as err:
        state.start_adhoc_run({FLOW_A: [f"aud-{i}" for i in range(81)]})
    assert err.value.status == 400
    assert "maximum is 80" in str(err.value.body)


def test_the_audience_limit_is_configurable(clock: ManualClock) -> None:
    state = make_state(clock, guardrails=Guardrails(max_audiences_per_adhoc_job=1).model_dump())
    with pytest.raises(SimError):
        state.start_adhoc_run({FLOW_A: [SEG_US, SEG_GOLD]})


def test_an_unknown_destination_is_a_404_with_a_message(clock: ManualClock) -> None:
    with pytest.raises(SimError) as err:
        make_state(clock).start_adhoc_run({"no-such-flow": [SEG_US]})
    assert err.value.status == 404
    assert "no-such-flow" in str(err.value.body)


def test_v1_requires_export_ids_the_simulator_knows(clock: ManualClock) -> None:
    state = make_state(clock)
    with pytest.raises(SimError) as err:
        state.start_adhoc_run({FLOW_A: [SEG_US]}, ["999", "abc"])
    assert err.value.status == 400
    assert "999, abc" in str(err.value.body)
    export_id = str(state.create_export_job(export_request(SEG_US))["id"])
    assert len(state.start_adhoc_run({FLOW_A: [SEG_US]}, [export_id])) == 1


def test_a_rejected_adhoc_request_consumes_no_quota(clock: ManualClock) -> None:
    state = make_state(clock, guardrails={"adhoc_jobs_per_day_per_org": 1})
    with pytest.raises(SimError):
        state.start_adhoc_run({FLOW_A: [SEG_UNMAPPED]})
    state.start_adhoc_run({FLOW_A: [SEG_US]})


def test_flow_runs_list_filters_by_flow_id_newest_first(clock: ManualClock) -> None:
    state = make_state(clock)
    first = state.start_adhoc_run({FLOW_A: [SEG_US]})[0].run_id
    clock.advance(1)
    state.start_adhoc_run({FLOW_B: [SEG_CART]})
    clock.advance(1)
    second = state.start_adhoc_run({FLOW_A: [SEG_GOLD]})[0].run_id
    assert [r["id"] for r in state.list_flow_runs(flow_id=FLOW_A)] == [second, first]
    assert len(state.list_flow_runs(flow_id=FLOW_A, limit=1)) == 1


# ------------------------------------------------------------------------------------------ determinism


def outcomes(seed: int) -> list[str]:
    clock = ManualClock(NOON)
    state = SimulatorState(SimulatorConfig(seed=seed, failure_rates=FailureRates(export_job=0.5)), clock)
    ids = [str(state.create_export_job(export_request(SEG_US))["id"]) for _ in range(16)]
    clock.advance(1000)
    return [state.get_export_job(i)["status"] for i in ids]


def test_failure_draws_are_deterministic_for_a_fixed_seed() -> None:
    first = outcomes(42)
    assert first == outcomes(42)
    assert {"SUCCEEDED", "FAILED"} == set(first)
    assert first != outcomes(43)


def test_reset_forgets_jobs_and_quotas_and_replays_the_same_ids(clock: ManualClock) -> None:
    state = make_state(clock)
    first = state.create_segment_job([SEG_US])["id"]
    state.create_segment_job([SEG_US])
    state.reset()
    assert state.segment_jobs == {}
    assert state.create_segment_job([SEG_US])["id"] == first

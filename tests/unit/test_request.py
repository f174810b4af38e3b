"""ActivationRequest: the producer's model is validated before anything is enqueued."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aep_activator.aep.pipeline.plan import PLAN
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.tasks.producer import InvalidRequest, parse_request

EXAMPLE = json.loads(Path("examples/activation-request.json").read_text())
DEST = "b0780cb5-2bb7-4409-bf2c-c625ca818588"


def test_the_shipped_example_is_the_tutorials_full_five_step_v1_flow() -> None:
    req = parse_request(EXAMPLE)
    assert [s.task_name for s in PLAN.steps_for(req)] == [
        "activation.create_segment_job", "activation.poll_segment_job", "activation.create_export_job",
        "activation.poll_export_job", "activation.run_activation", "activation.poll_activation",
    ]  # fmt: skip
    assert req.version == 1 and req.export_job is not None and req.segment_job


def test_a_run_no_producer_named_is_started_by_python() -> None:
    req = ActivationRequest.model_validate({"activation_info": {"b0780cb5-2bb7-4409-bf2c-c625ca818588": [
        "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"]}, "version": 2})  # fmt: skip
    assert req.started_by == "python", "not 'api': the HTTP API records api:<key name>"


def test_v2_without_a_segment_job_has_only_the_activation_steps() -> None:
    req = parse_request({"activation_info": {DEST: ["a"]}, "version": 2, "segment_job": False})
    assert [s.task_name for s in PLAN.steps_for(req)] == ["activation.run_activation", "activation.poll_activation"]


def test_the_segment_job_defaults_to_the_activated_audiences() -> None:
    req = parse_request({"activationInfo": {DEST: ["a", "b"], "other": ["b", "c"]}, "version": 2})
    assert req.evaluation_segment_ids == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"unknown": 1}, "unknown"),
        ({"activation_info": {}}, "activation_info"),
        ({"activation_info": {DEST: []}}, "activation_info"),
        ({"activation_info": {DEST: [""]}}, "activation_info"),
        ({"activation_info": {DEST: [f"a{i}" for i in range(81)]}, "segment_job": False}, "80"),
        ({"segment_ids": [f"s{i}" for i in range(21)]}, "20"),
        ({"version": 3}, "version"),
        ({"on_quota": "maybe"}, "on_quota"),
        ({"export_job": None}, "export_job"),
        ({"export_job": {**EXAMPLE["export_job"], "schema": {}}}, "export_job.schema.name"),
        ({"export_job": {**EXAMPLE["export_job"], "destination": {}}}, "export_job.destination"),
        (
            {"export_job": {**EXAMPLE["export_job"], "filter": {"fromIngestTimestamp": "2018-01-01"}}},
            "export_job.filter.fromIngestTimestamp",
        ),
        (
            {"export_job": {**EXAMPLE["export_job"], "filter": {"segments": [{"segmentId": "x", "status": ["gone"]}]}}},
            "export_job.filter.segments.0.status",
        ),
        ({"version": 2}, "export_job"),
        ({"segment_job": False}, "segment_ids"),
        ({"idempotency_key": "  "}, "idempotency_key"),
    ],
)
def test_a_bad_request_is_refused_with_a_message_naming_the_field(change: dict, names: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request({**EXAMPLE, **change})
    assert names in str(info.value)


def test_malformed_json_is_refused_clearly() -> None:
    with pytest.raises(InvalidRequest, match="Invalid JSON"):
        parse_request('{"activation_info": ')

"""LOG_FORMAT=json: every line is one JSON object, and every line logged inside a step carries the run id,
step, attempt, carrier seq, AEP ids and the x-request-id of its AEP call, in the worker and the API."""

from __future__ import annotations

import json
import time

import pytest
import requests

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.tasks import start_activation
from aep_activator.workers.api.keys import new_key
from tests.consolekit import free_port
from tests.integration.conftest import wait_for_runs

pytestmark = pytest.mark.integration

FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_worker_and_api_lines_are_json_and_step_lines_carry_the_run_step_attempt_and_request_id(make_stack) -> None:
    key, entry = new_key("ops1", "ops")
    stack = make_stack(SimulatorConfig(speed=600, seed=4), env={"LOG_FORMAT": "json", "API_KEYS": entry})
    worker = stack.start_worker(concurrency=1)
    stack.wait_worker_ready(worker)
    run_id = start_activation({"activation_info": {FLOW: ["4afe34ae-8c98-4513-8a1d-67ccaa54bc05"]}, "version": 2,
                               "segment_job": False})  # fmt: skip
    [run] = wait_for_runs(stack, [run_id])
    assert run.status == "succeeded"
    time.sleep(0.5)
    log = (stack.log_dir / "w1.log").read_text()
    assert [line for line in log.splitlines() if line.strip() and not line.startswith("{")] == []  # no banner
    lines = json_lines(log)
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("run_id") == run_id]
    assert {line["step"] for line in mine} == {"run_activation", "poll_activation"}
    for line in mine:
        assert {"attempt", "seq", "segment_job_id", "export_job_id", "flow_run_ids"} <= set(line)
        assert line["request_id"].startswith(f"{run_id}.{line['step']}.{line['seq']}")
    aep = [line for line in mine if line["message"].startswith("AEP ")]
    assert any("POST /data/core/activation/disflowprovider/adhocrun answered 200" in x["message"] for x in aep)
    assert all(x["request_id"].count(".") == 3 for x in aep)  # {run_id}.{step}.{seq}.{n}
    polls = [x for x in mine if x["step"] == "poll_activation"]
    assert any(x["flow_run_ids"] == [o["run_id"] for o in run.flow_runs] for x in polls)
    secret = stack.env()["AEP_CLIENT_SECRET"]
    assert secret not in log

    base = stack.start_api(free_port())
    assert requests.get(f"{base}/v1/runs/{run_id}", headers={"X-API-Key": key}, timeout=5).status_code == 200
    time.sleep(0.3)
    api_lines = (stack.log_dir / "api.log").read_text().splitlines()
    parsed = [json.loads(line) for line in api_lines if line.strip().startswith("{")]
    assert parsed and any(f"/v1/runs/{run_id}" in p["message"] for p in parsed)
    assert key not in (stack.log_dir / "api.log").read_text()

"""The CLI as a user runs it: a real process, real Redis, a real worker and the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.conftest import EXAMPLE, wait_for_runs

pytestmark = pytest.mark.integration


def cli(stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env()}
    return subprocess.run(
        [sys.executable, "-m", "aep_activator.workers", *args],
        env=env, capture_output=True, text=True, input=stdin, timeout=60
    )


def test_run_json_then_status_json_follow_a_run_to_success(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker())
    out = cli(stack, "run", "--json", EXAMPLE)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]
    wait_for_runs(stack, [run_id])
    status = cli(stack, "status", "--json", run_id)
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)
    assert record["status"] == "succeeded" and record["segment_job_id"] and record["export_job_id"]
    assert stack.env()["AEP_CLIENT_SECRET"] not in status.stdout
    table = cli(stack, "status", run_id)
    assert "poll_activation" in table.stdout and "SUCCEEDED" in table.stdout
    quota = cli(stack, "quota", "--json")
    assert {q["quota"]: q["used"] for q in json.loads(quota.stdout)} == {
        "adhoc": 1, "segment_jobs": 1, "segment_jobs_year": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["run", "-"], "{not json", "not valid JSON"),
        (["run", "-"], '{"activation_info": {"d": ["a"]}, "bogus": 1}', "bogus"),
        (["run", "-d", "dest=a"], None, "export_job: required for ad-hoc v1"),
        (["run", "-d", "dest=a", "--version", "2", "--dataset", "ds"], None, "v2 takes no export job"),
        (["run", "-d", "oops"], None, "DATAFLOW_ID=AUDIENCE"),
        (["run", "missing.json"], None, "missing.json"),
    ],
)
def test_bad_input_exits_non_zero_naming_the_problem_and_enqueues_nothing(make_stack, args, stdin, message):
    stack = make_stack()
    out = cli(stack, *args, stdin=stdin)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr
    assert cli(stack, "runs", "--json").stdout.strip() == "[]"


def test_status_of_an_unknown_run_says_so(make_stack):
    stack = make_stack()
    out = cli(stack, "status", "nope")
    assert out.returncode == 1 and "no run 'nope'" in out.stderr

"""Adding a step: a plan with a seventh step runs through a real worker, and the run ends after it.

The worker loads tests/integration/extra_step_app.py, which runs the plan of extra_step.py (one
``Step`` added to the shipped plan, plus its domain function); the producer is the shipped one. If any
place other than the plan decided which step finishes a run, the run would be marked succeeded at
``poll_activation`` and the new step dropped. The test process itself keeps the shipped plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aep_activator.aep.pipeline.plan import PLAN
from aep_activator.tasks import runtime, start_activation
from tests.integration.conftest import EXAMPLE, wait_for_runs
from tests.integration.extra_step import EXTENDED, EXTRA

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_extended_plan_is_the_shipped_one_with_one_more_step_at_the_end() -> None:
    assert [s.name for s in EXTENDED.steps] == [*(s.name for s in PLAN.steps), EXTRA]
    assert EXTENDED[EXTRA].task_name == "activation.confirm_delivery"
    assert runtime.current_plan() is PLAN, "defining a plan changes no process's plan"


def test_a_plan_with_a_seventh_step_runs_it_through_a_real_worker_and_succeeds_only_after_it(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker(app="tests.integration.extra_step_app"))
    run_id = start_activation(json.loads((ROOT / EXAMPLE).read_text()))
    (run,) = wait_for_runs(stack, [run_id])
    assert run.status == "succeeded", (run.error, run.timeline)
    assert run.step == EXTRA
    events = [(e["step"], e["event"]) for e in run.timeline]
    assert (EXTRA, "confirmed") in events
    assert events[-1] == (EXTRA, "succeeded"), events
    assert events.index((EXTRA, "confirmed")) > max(i for i, e in enumerate(events) if e[0] == "poll_activation")
    # It waited once (through the delay queue, as any poll) and then read each flow run back from AEP.
    log = stack.wait_log(f"activation.{EXTRA}[{run.task_id}] succeeded")
    assert f"activation.{EXTRA}[{run.task_id}] retry" in log, log[-3000:]
    reads = stack.journal("GET", "/data/foundation/flowservice/runs/{id}")
    assert {e["path"].rsplit("/", 1)[1] for e in reads} >= {o["run_id"] for o in run.flow_runs}
    assert stack.posts()["/data/core/activation/disflowprovider/adhocrun"] == 1

"""Running the chain's steps one execution at a time, without Celery: for tests of the steps' contracts.

    rt = step_runtime(sim_url, redis_url, prefix)
    run_id = new_run(rt, request)
    done = step_once(rt, run_id)          # enter, the domain step, leave: exactly what a worker does

``step_once`` runs the run's *current* step with its current carrier, through the real runner
(``tasks.runner.execute_once``): the same fence, lease, intent, quota and leave scripts as a worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aep_activator.aep.coordination.runs import RunRecord
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.config.settings import load_settings
from aep_activator.tasks.runner import Executed, execute_once
from aep_activator.tasks.runtime import Runtime, build_runtime

FAST = {
    "aep_connect_timeout_s": 1, "aep_read_timeout_s": 2, "look_settle_s": 3, "poll_segment_initial_s": 1,
    "poll_export_initial_s": 1, "poll_activation_initial_s": 1, "retry_initial_s": 0.5,
}  # fmt: skip


def step_runtime(sim_url: str, redis_url: str, prefix: str, *, clock: Callable[[], float] | None = None,
                 **settings: Any) -> Runtime:  # fmt: skip
    s = load_settings(
        aep_base_url=sim_url, aep_ims_url=sim_url, aep_client_id="sim-client", aep_client_secret="sim-secret",
        aep_org_id="SIMORG0000000000000000000@AdobeOrg", aep_sandbox_name="prod", redis_url=redis_url,
        aep_key_prefix=prefix, **{**FAST, **settings},
    )  # fmt: skip
    return build_runtime(s, clock=clock)


def new_run(rt: Runtime, request: dict[str, Any] | ActivationRequest) -> str:
    req = request if isinstance(request, ActivationRequest) else ActivationRequest.model_validate(request)
    created = rt.ledger.create(req.wire(), started_by="test", first_step=rt.plan.first(req).name,
                               run_id=uuid.uuid4().hex)  # fmt: skip
    return created.run_id


def record(rt: Runtime, run_id: str) -> RunRecord:
    found = rt.ledger.get(run_id)
    assert found is not None, run_id
    return found


def step_once(rt: Runtime, run_id: str) -> Executed:
    """One execution of the run's current step, for its current carrier."""
    current = record(rt, run_id)
    return execute_once(rt, rt.plan[current.step], run_id, current.seq)

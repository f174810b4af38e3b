"""Running the chain's steps one execution at a time, without Celery: for tests of the steps' contracts.

    rt = step_runtime(sim_url, redis_url, prefix)
    run_id = new_run(rt, request)
    done = step_once(rt, run_id)          # enter, the domain step, leave: exactly what a worker does

``step_once`` runs the run's *current* step with its current carrier, through the real runner
(``tasks.runner.execute_once``): the same fence, lease, intent, quota and leave scripts as a worker.

``inprocess_kit`` puts the whole of it in this process: the simulator's dispatch answers the real
client through the in-process ``requests`` transport (no server, no thread), and one ``ManualClock``
is both AEP's clock and the one every ledger script reads, so a test moves time instead of sleeping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from aep_activator.aep.api.auth import StaticToken
from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.coordination.runs import RunRecord
from aep_activator.aep.pipeline.plan import PLAN, Plan
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aepsim.api import SimContext
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.state.clock import ManualClock
from aep_activator.aepsim.testing import inprocess_session
from aep_activator.config.settings import load_settings
from aep_activator.tasks.runner import Executed, execute_once
from aep_activator.tasks.runtime import Runtime, build_runtime

FAST = {
    "aep_connect_timeout_s": 1, "aep_read_timeout_s": 2, "look_settle_s": 3, "poll_segment_initial_s": 1,
    "poll_export_initial_s": 1, "poll_activation_initial_s": 1, "retry_initial_s": 0.5,
}  # fmt: skip


def step_runtime(sim_url: str, redis_url: str, prefix: str, *, clock: Callable[[], float] | None = None,
                 plan: Plan = PLAN, **settings: Any) -> Runtime:  # fmt: skip
    """A runtime for ``plan`` (the shipped one unless told), whatever plan this process was switched to."""
    s = load_settings(**{
        "aep_base_url": sim_url, "aep_ims_url": sim_url, "aep_client_id": "sim-client",
        "aep_client_secret": "sim-secret", "aep_org_id": "SIMORG0000000000000000000@AdobeOrg",
        "aep_sandbox_name": "prod", "redis_url": redis_url, "aep_key_prefix": prefix, **FAST, **settings,
    })  # fmt: skip
    return build_runtime(s, plan, clock=clock)


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


@dataclass
class Kit:
    """A runtime on real Redis whose AEP is the in-process simulator, and the clock both share."""

    rt: Runtime
    sim: SimContext
    clock: ManualClock

    def journal(self, method: str | None = None, template: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.sim.journal.since(0)
            if (method is None or e.get("method") == method) and (template is None or e.get("template") == template)
        ]  # fmt: skip

    def posts(self, template: str) -> int:
        """POST *attempts* on ``template``, whatever their answer."""
        return len(self.journal("POST", template))

    def faults(self, route: str, **fault: Any) -> None:
        """Inject faults on one ``"METHOD /template"`` route; no arguments: none there any more."""
        if fault:
            self.sim.apply_config({"endpoint_faults": {route: fault}})
        else:  # a patch deep-merges: replace the whole mapping instead
            faults = {k: v for k, v in self.sim.config.endpoint_faults.items() if k != route}
            self.sim.set_config(self.sim.config.model_copy(update={"endpoint_faults": faults}))

    def step(self, run_id: str) -> Executed:
        return step_once(self.rt, run_id)

    def record(self, run_id: str) -> RunRecord:
        return record(self.rt, run_id)


def inprocess_kit(redis_url: str, prefix: str, sim_config: SimulatorConfig | None = None, **settings: Any) -> Kit:
    # Starts at the real time (a wait is dated by this clock, as a worker dates it by the server's, so
    # it could start anywhere). A test that moves time by hours may so cross a UTC midnight: read a quota
    # at the time it was spent.
    clock = ManualClock(time.time())
    sessions, sim = inprocess_session(sim_config or SimulatorConfig(seed=1), clock)
    fixture = sim.state.fixture
    rt = step_runtime(sessions.base_url, redis_url, prefix, clock=clock.now,
                      aep_client_id=fixture.clients[0].clientId, aep_org_id=fixture.orgId, **settings)  # fmt: skip
    s = rt.settings
    rt._client = AEPClient(
        sessions.base_url, tokens=StaticToken(SecretStr(sim.config.static_token or "")), api_key=s.aep_client_id or "",
        org_id=fixture.orgId, sandbox=s.aep_sandbox_name, session=sessions(),
        timeout=(s.aep_connect_timeout_s, s.aep_read_timeout_s),
    )  # fmt: skip
    return Kit(rt, sim, clock)

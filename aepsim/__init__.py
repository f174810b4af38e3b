"""The AEP simulator: a pure state machine (``state/``) behind a framework-free dispatch (``api/``),
served over real HTTP by Tornado or in-process as a ``requests`` transport (``http/``).

Public API::

    from aep_activator.aepsim import SimulatorConfig, SimulatorServer, SimulatorState, ManualClock
    server = SimulatorServer(SimulatorConfig(speed=600, seed=1))
    base_url = server.start_in_thread()      # http://127.0.0.1:<port>
    ...
    server.stop()

In-process (no server, no thread), see ``aepsim.testing.inprocess_session``::

    from aep_activator.aepsim.testing import inprocess_session
    make_session, ctx = inprocess_session(SimulatorConfig(seed=1), ManualClock())

The Tornado names (``SimulatorServer``, ``serve_forever``, ``run_simulator_cli``) load on first use,
so importing the state machine or the transport never imports Tornado.
"""


from aep_activator import canonical

canonical(__name__)

import importlib
from typing import TYPE_CHECKING, Any

from aep_activator.aepsim.config import (
    Durations,
    FailureRates,
    FaultSettings,
    Guardrails,
    ListSettings,
    SimulatorConfig,
)
from aep_activator.aepsim.state import SimulatorState, StartedRun
from aep_activator.aepsim.state.clock import Clock, ManualClock, SystemClock
from aep_activator.aepsim.state.fixture import Fixture, load_fixture

if TYPE_CHECKING:
    from aep_activator.aepsim.http.tornado_server import SimulatorServer, run_simulator_cli, serve_forever

_TORNADO = "aep_activator.aepsim.http.tornado_server"
_LAZY = {name: _TORNADO for name in ("SimulatorServer", "run_simulator_cli", "serve_forever")}

__all__ = [
    "Clock",
    "Durations",
    "FailureRates",
    "FaultSettings",
    "Fixture",
    "Guardrails",
    "ListSettings",
    "ManualClock",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "StartedRun",
    "SystemClock",
    "load_fixture",
    "run_simulator_cli",
    "serve_forever",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aep_activator.aepsim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

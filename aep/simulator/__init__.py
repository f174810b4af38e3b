"""The AEP simulator: a pure state machine (``state``) behind a Tornado server (``server``).

Public API::

    from aep.simulator import SimulatorConfig, SimulatorServer, SimulatorState, ManualClock
    server = SimulatorServer(SimulatorConfig(speed=600, seed=1))
    base_url = server.start_in_thread()      # http://127.0.0.1:<port>
    ...
    server.stop()
"""

from aep.simulator.clock import Clock, ManualClock, SystemClock
from aep.simulator.config import Durations, FailureRates, FaultSettings, Guardrails, SimulatorConfig
from aep.simulator.fixture import Fixture, load_fixture
from aep.simulator.server import SimulatorServer, run_simulator_cli, serve_forever
from aep.simulator.state import SimulatorState, StartedRun

__all__ = [
    "Clock",
    "Durations",
    "FailureRates",
    "FaultSettings",
    "Fixture",
    "Guardrails",
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

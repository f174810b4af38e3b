"""The AEP simulator: a pure state machine (``state``) behind a Tornado server (``server``).

Public API::

    from aep_activator.aepsim import SimulatorConfig, SimulatorServer, SimulatorState, ManualClock
    server = SimulatorServer(SimulatorConfig(speed=600, seed=1))
    base_url = server.start_in_thread()      # http://127.0.0.1:<port>
    ...
    server.stop()
"""


from aep_activator import canonical

canonical(__name__)

from aep_activator.aepsim.clock import Clock, ManualClock, SystemClock
from aep_activator.aepsim.config import Durations, FailureRates, FaultSettings, Guardrails, SimulatorConfig
from aep_activator.aepsim.fixture import Fixture, load_fixture
from aep_activator.aepsim.server import SimulatorServer, run_simulator_cli, serve_forever
from aep_activator.aepsim.state import SimulatorState, StartedRun

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

"""The pure state machine: no HTTP, an injected clock, seeded randomness. ``machine.py`` has the contract."""

from aep_activator.aepsim.state.machine import RunPage, SimulatorState, StartedRun

__all__ = ["RunPage", "SimulatorState", "StartedRun"]

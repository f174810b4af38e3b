"""``SimContext``: everything the dispatch shares (state, tokens, journal, faults), framework-free.

One context per simulator, whichever adapter serves it (Tornado, the in-process transport, or both
at once). Config changes go through ``apply_config`` so the state, the fault generator and the
fixture stay consistent; ``reset`` clears state, journal, quotas and tokens.
"""

from __future__ import annotations

from typing import Any

from aep_activator.aepsim.api.faults import FaultInjector
from aep_activator.aepsim.api.gateway import TokenStore
from aep_activator.aepsim.api.journal import Journal
from aep_activator.aepsim.config import SimulatorConfig, merge_config
from aep_activator.aepsim.state import SimulatorState
from aep_activator.aepsim.state.clock import Clock
from aep_activator.aepsim.state.fixture import Fixture


class SimContext:
    def __init__(self, config: SimulatorConfig, clock: Clock, fixture: Fixture | None = None) -> None:
        self.clock = clock
        self.state = SimulatorState(config, clock, fixture)
        self.tokens = TokenStore(clock)
        self.journal = Journal()
        self.faults = FaultInjector(config.seed)

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    def apply_config(self, patch: dict[str, Any]) -> SimulatorConfig:
        """Deep-merge ``patch`` into the config; raises ``pydantic.ValidationError`` (unknown keys too)."""
        return self.set_config(merge_config(self.config, patch))

    def set_config(self, config: SimulatorConfig) -> SimulatorConfig:
        """Replace the whole config."""
        if config.seed != self.config.seed:
            self.faults.reseed(config.seed)
        self.state.update_config(config)
        return config

    def reset(self, patch: dict[str, Any] | None = None) -> None:
        if patch:
            self.apply_config(patch)
        self.state.reset()
        self.journal.clear()
        self.tokens.clear()
        self.faults.reseed(self.config.seed)

    def stats(self) -> dict[str, Any]:
        return {
            **self.journal.counters(),
            "jobs": self.state.job_counts(),
            "quota_used": self.state.quota.snapshot(),
            "tokens_issued": self.tokens.issued,
            "journal_seq": self.journal.last_seq,
        }

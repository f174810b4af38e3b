"""``StateCore``: what every part of the simulator state shares: lock, clock, config, fixture,
seeded generators, quota counters and the record stores. See ``state.py`` for the behaviour.
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import TYPE_CHECKING

from aep_activator.aepsim import quota
from aep_activator.aepsim.clock import Clock, seconds_until_next_utc_midnight
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.errors import quota_error, ups_error
from aep_activator.aepsim.fixture import Fixture, SegmentInfo, load_fixture

if TYPE_CHECKING:
    from aep_activator.aepsim.export_jobs import ExportJobRecord
    from aep_activator.aepsim.flow_runs import FlowRunRecord
    from aep_activator.aepsim.segment_jobs import SegmentJobRecord

FIRST_EXPORT_JOB_ID = 100


class StateCore:
    """Shared state and helpers. Public methods of subclasses take ``self._lock`` (re-entrant)."""

    def __init__(self, config: SimulatorConfig, clock: Clock, fixture: Fixture | None = None) -> None:
        self._lock = threading.RLock()
        self.clock = clock
        self._config = config
        self.fixture = fixture or load_fixture(config.fixture_path)
        self.quota = quota.DailyQuota()
        self._reset_unlocked()

    # ---------------------------------------------------------------------------------- lifecycle

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def update_config(self, config: SimulatorConfig) -> None:
        """Swap the config; reloads the fixture if its path changed and reseeds if the seed changed."""
        with self._lock:
            old, self._config = self._config, config
            if config.fixture_path != old.fixture_path:
                self.fixture = load_fixture(config.fixture_path)
            if config.seed != old.seed:
                self._outcomes = random.Random(config.seed)
                self._ids = random.Random(None if config.seed is None else config.seed + 1)

    def reset(self) -> None:
        """Forget every job, run and quota use; reseed the generators. The config stays."""
        with self._lock:
            self._reset_unlocked()

    def _reset_unlocked(self) -> None:
        seed = self._config.seed
        self._outcomes = random.Random(seed)
        self._ids = random.Random(None if seed is None else seed + 1)
        self.segment_jobs: dict[str, SegmentJobRecord] = {}
        self.export_jobs: dict[int, ExportJobRecord] = {}
        self.flow_runs: dict[str, FlowRunRecord] = {}
        self._seq = 0
        self._next_export_id = FIRST_EXPORT_JOB_ID
        self.quota.clear()

    # ---------------------------------------------------------------------------------- helpers

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _hex(self, n: int = 32) -> str:
        return f"{self._ids.getrandbits(4 * n):0{n}x}"

    def _fails(self, rate: float) -> bool:
        # Always draw, so outcomes depend only on the order of creations, not on the rates in force.
        return self._outcomes.random() < rate

    def _scale(self, seconds: float) -> float:
        return seconds / self._config.speed

    def _org(self, org_id: str | None) -> str:
        return org_id or self.fixture.orgId

    def _quota_check(self, kind: str, scope: str, limit: int, now: float, what: str) -> None:
        if self.quota.used(kind, scope, now) >= limit:
            raise quota_error(
                f"Daily limit reached: {limit} {what} per UTC day for {scope}; the limit resets at 00:00 UTC",
                seconds_until_next_utc_midnight(now),
            )

    def _known_segments(self, segment_ids: list[str]) -> list[SegmentInfo]:
        if "*" in segment_ids:
            return list(self.fixture.segments)
        unknown = [s for s in segment_ids if self.fixture.segment(s) is None]
        if unknown:
            raise ups_error(400, f"Segment definition(s) not found: {', '.join(unknown)}", code=1404)
        return [s for s in self.fixture.segments if s.id in segment_ids]

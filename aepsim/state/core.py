"""``StateCore``: what every part of the simulator state shares: lock, clock, config, fixture,
seeded generators, quota counters, the record stores and sandbox resolution. See ``machine.py`` for
the behaviour and the documented choices.

Four generators, each from the seed, so one kind of draw never shifts another: outcomes (``seed``),
ids (``seed + 1``), fault draws (``seed + 2``, owned by the api layer), durations (``seed + 3``).
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from typing import TYPE_CHECKING

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.state import quota
from aep_activator.aepsim.state.clock import Clock, seconds_until_next_utc_midnight, utc_day, year_window
from aep_activator.aepsim.state.errors import quota_error, unknown_sandbox_error, ups_error
from aep_activator.aepsim.state.fixture import Fixture, SandboxInfo, SegmentInfo, load_fixture

if TYPE_CHECKING:
    from aep_activator.aepsim.state.export_jobs import ExportJobRecord
    from aep_activator.aepsim.state.flow_runs import FlowRunRecord
    from aep_activator.aepsim.state.segment_jobs import SegmentJobRecord

FIRST_EXPORT_JOB_ID = 100


def _rng(seed: int | None, offset: int) -> random.Random:
    return random.Random(None if seed is None else seed + offset)


def lognormal(median_s: float, sigma: float, rng: random.Random) -> float:
    """One draw of a log-normal duration of median ``median_s`` and log-scale spread ``sigma``.

    Always consumes exactly one draw of ``rng`` (``sigma`` 0 returns ``median_s`` exactly), so the
    durations of later jobs depend only on how many came before, never on the sigma in force.
    """
    return median_s * math.exp(sigma * rng.gauss(0.0, 1.0))


class StateCore:
    """Shared state and helpers. Public methods of subclasses take ``self._lock`` (re-entrant)."""

    def __init__(self, config: SimulatorConfig, clock: Clock, fixture: Fixture | None = None) -> None:
        self._lock = threading.RLock()
        self.clock = clock
        self._config = config
        self.fixture = fixture or load_fixture(config.fixture_path)
        self.quota = quota.QuotaCounter()
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
                self._reseed(config.seed)

    def reset(self) -> None:
        """Forget every job, run and quota use; reseed the generators. The config stays."""
        with self._lock:
            self._reset_unlocked()

    def _reseed(self, seed: int | None) -> None:
        self._outcomes = _rng(seed, 0)
        self._ids = _rng(seed, 1)
        self._durations = _rng(seed, 3)

    def _reset_unlocked(self) -> None:
        self._reseed(self._config.seed)
        self.segment_jobs: dict[str, SegmentJobRecord] = {}
        self.export_jobs: dict[int, ExportJobRecord] = {}
        self.flow_runs: dict[str, FlowRunRecord] = {}
        self._seq = 0
        self._next_export_id = FIRST_EXPORT_JOB_ID
        self.quota.clear()

    # ---------------------------------------------------------------------------------- draws

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _hex(self, n: int = 32) -> str:
        return f"{self._ids.getrandbits(4 * n):0{n}x}"

    def _fails(self, rate: float) -> bool:
        # Always draw, so outcomes depend only on the order of creations, not on the rates in force.
        return self._outcomes.random() < rate

    def _scale(self, seconds: float) -> float:
        return seconds / self._config.speed

    def _spread(self, seconds: float) -> float:
        """``seconds`` as the median of a log-normal draw of spread ``durations.sigma`` (:func:`lognormal`)."""
        return lognormal(seconds, self._config.durations.sigma, self._durations)

    # ---------------------------------------------------------------------------------- scope

    def _org(self, org_id: str | None) -> str:
        return org_id or self.fixture.orgId

    def _sandbox(self, name: str | None, org: str | None = None) -> SandboxInfo:
        """The named sandbox, the default one for None (S-SANDBOX-MD), else the undocumented 403."""
        if name is None:
            return self.fixture.default_sandbox()
        found = self.fixture.sandbox(name)
        if found is None:
            raise unknown_sandbox_error(name, self._org(org))
        return found

    def _known_segments(self, segment_ids: list[str]) -> list[SegmentInfo]:
        if "*" in segment_ids:
            return list(self.fixture.segments)
        unknown = [s for s in segment_ids if self.fixture.segment(s) is None]
        if unknown:
            raise ups_error(400, f"Segment definition(s) not found: {', '.join(unknown)}", code=1404)
        return [s for s in self.fixture.segments if s.id in segment_ids]

    # ---------------------------------------------------------------------------------- quotas

    def _daily_check(self, kind: str, scope: str, limit: int, now: float, what: str) -> None:
        if self.quota.used(kind, scope, utc_day(now)) >= limit:
            raise quota_error(
                f"Daily limit reached: {limit} {what} per UTC day for {scope}; the limit resets at 00:00 UTC",
                seconds_until_next_utc_midnight(now),
            )

    def _fae_check(self, scope: str, sandbox: SandboxInfo, now: float) -> None:
        """Refuse an on-demand segment job over the yearly (checked first: its wait is the longer) or
        the daily FAE limit of ``sandbox``."""
        guard = self._config.guardrails
        window, reset_at = year_window(now, guard.quota_year_start)
        yearly = guard.segment_jobs_per_year(sandbox.type)
        if self.quota.used(quota.SEGMENT_YEAR, scope, window) >= yearly:
            raise quota_error(
                f"Yearly limit reached: {yearly} on-demand segment jobs per year for {scope} ({sandbox.type} "
                f"sandbox) in the year from {window}; the limit resets on {utc_day(reset_at)}",
                max(1, math.ceil(reset_at - now)),
            )
        self._daily_check(quota.SEGMENT, scope, guard.segment_jobs_per_day_per_sandbox, now, "on-demand segment jobs")

    def _fae_take(self, scope: str, now: float) -> None:
        self.quota.take(quota.SEGMENT, scope, utc_day(now))
        self.quota.take(quota.SEGMENT_YEAR, scope, year_window(now, self._config.guardrails.quota_year_start)[0])

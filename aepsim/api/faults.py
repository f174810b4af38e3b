"""Seeded fault injection for AEP paths: 5xx, gateway 429, latency, dropped and hung connections.

``settings_for`` picks the ``FaultSettings`` for a route: a per-endpoint entry
(``"METHOD /path/template"``) wins; otherwise the global settings apply to AEP paths only, never to
IMS (unless configured per endpoint) or ``/simulator/*``. ``FaultInjector.decide`` draws once per
request from its own ``random.Random(seed)``, so fault draws never shift job outcomes.
Kinds, tried in this order on one uniform draw: drop, hang (accept-then-timeout), 5xx, 429.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from aep_activator.aepsim.config import FaultSettings, SimulatorConfig
from aep_activator.aepsim.state.errors import SimError, gateway_error

FaultKind = Literal["none", "drop", "hang", "5xx", "429"]

_5XX = {
    500: ("500000", "Internal Server Error"),
    502: ("502000", "Bad Gateway"),
    503: ("503000", "Service Unavailable"),
}


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    latency_s: float = 0.0
    status: int | None = None
    retry_after_s: int = 0

    def error(self) -> SimError:
        """The answer for a ``5xx`` or ``429`` decision."""
        if self.kind == "429":
            # Verbatim gateway throttle body (S-UMAPI, aep-api.md §7.3).
            return gateway_error(429, "429050", "Too many requests", {"Retry-After": str(self.retry_after_s)})
        status = self.status or 500
        code, message = _5XX[status]
        return gateway_error(status, code, message)


NO_FAULT = FaultDecision("none")


def settings_for(config: SimulatorConfig, route: str, *, is_aep: bool) -> FaultSettings | None:
    """The fault settings in force for ``route`` ("METHOD /template"), or None for no faults."""
    if route in config.endpoint_faults:
        return config.endpoint_faults[route]
    return config.faults if is_aep else None


class FaultInjector:
    """Draws fault decisions from a seeded generator; thread-safe."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        self._rng = random.Random(None if seed is None else seed + 2)

    def decide(self, settings: FaultSettings | None) -> FaultDecision:
        if settings is None or settings.is_quiet():
            return NO_FAULT
        with self._lock:
            latency_s = (settings.latency_ms + self._rng.uniform(0, settings.latency_jitter_ms)) / 1000
            draw = self._rng.random()
            status = self._rng.choice(sorted(_5XX))
        edges: list[tuple[float, FaultKind]] = [
            (settings.drop_rate, "drop"),
            (settings.hang_rate, "hang"),
            (settings.error_5xx_rate, "5xx"),
            (settings.rate_429, "429"),
        ]
        total = 0.0
        for rate, kind in edges:
            total += rate
            if draw < total:
                return FaultDecision(kind, latency_s, status if kind == "5xx" else None, settings.retry_after_s)
        return FaultDecision("none", latency_s)

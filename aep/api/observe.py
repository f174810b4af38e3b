"""Observing the client's requests (for the metrics): route template, method, status, duration.

``observing(callback)`` calls ``callback`` once per request sent inside the block, from the same
thread (a ContextVar, like ``client.tracing``). Label values are route *templates* (aep/api/paths.py),
never ids, bodies or headers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from aep_activator.aep.api.paths import route_of


@dataclass(frozen=True)
class Observation:
    """One request as the metrics see it: its route *template* (aep/api/paths.py), never its ids or body.
    ``status`` is the HTTP status, or ``error`` when no answer came (a timeout, a reset)."""

    route: str
    method: str
    status: str
    duration_s: float
    request_id: str


Observer = Callable[[Observation], None]
_observer: ContextVar[Observer | None] = ContextVar("aep_observer", default=None)


@contextmanager
def observing(observer: Observer) -> Iterator[None]:
    """Call ``observer`` once per request sent inside this block (each 401 re-send counts); an observer
    that raises is ignored: metrics never fail a call."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


def notify(method: str, path: str, status: str, started: float, rid: str | None) -> None:
    """Tell the current observer (if any) about one request that began at ``started`` (monotonic)."""
    observer = _observer.get()
    if observer is None:
        return
    with contextlib.suppress(Exception):  # a metric must never fail a request
        observer(Observation(route_of(path), method.upper(), status, time.monotonic() - started, rid or ""))

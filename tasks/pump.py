"""The delay pump: a worker bootstep that moves due delayed tasks from Redis to the broker.

Runs on the worker's event-loop timer in the main process (no thread, no sleep). Every worker runs
one; pops are atomic and leased (``aep/delays.py``), so several pumps never publish a member twice
except after a crash in the publish window, which the steps' fences absorb.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from kombu.utils.json import loads

from aep_activator.tasks.runtime import runtime

log = logging.getLogger(__name__)

BATCH = 500


class DelayPump(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        interval = runtime().settings.delay_pump_interval_s
        self.tref = worker.timer.call_repeatedly(interval, self.pump, (worker,), priority=10)
        log.info("delay pump started (every %.2fs)", interval)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def pump(self, worker: Any) -> int:
        """Publish every due member; return how many were published."""
        try:
            delays = runtime().delays
            items = delays.pop_due(BATCH)
            for member, payload in items:
                sig = worker.app.signature(loads(payload))  # type: ignore[no-untyped-call]
                sig.apply_async()
                delays.ack(member)
            return len(items)
        except Exception:  # the pump must survive a Redis blip; its leases make the next tick safe
            log.exception("delay pump tick failed")
            return 0

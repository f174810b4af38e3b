"""The watchdog: a worker bootstep that publishes every run whose carrier is due.

It runs on the worker's event-loop timer in the main process (no thread, no sleep), every
``DELAY_PUMP_INTERVAL_S``. Each tick pops the due carriers (``aep/coordination/carriers.py``: the end
of a wait, a wake-up that no execution took within ``WATCHDOG_GRACE_S``, or the end of a dead
execution's lease) and publishes their current step. Every worker runs one; the pop is atomic and the
run's fence drops any duplicate, so several watchdogs are safe.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from aep_activator.tasks.runtime import runtime
from aep_activator.tasks.wakeups import publish

log = logging.getLogger(__name__)

BATCH = 500


class Watchdog(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        from aep_activator.tasks.upgrade import upgrade

        # Runs in flight under an older ledger layout get their carriers before anything else runs
        # (idempotent, one worker at a time); a ledger newer than this code stops the worker here.
        if moved := upgrade(runtime()):
            log.warning("upgraded %d runs in flight to the current run-ledger layout", moved)
        interval = runtime().settings.delay_pump_interval_s
        self.tref = worker.timer.call_repeatedly(interval, self.tick, (worker,), priority=10)
        log.info("watchdog started (every %.2fs)", interval)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def tick(self, worker: Any) -> int:
        """Publish every due carrier's step; return how many were published."""
        try:
            rt = runtime()
            wakes = rt.carriers.pop_due(grace_s=rt.settings.watchdog_grace_s, queue_keys=rt.queue_keys(), limit=BATCH)
            for w in wakes:
                if w.kind != "wake":
                    log.warning("run %s: watchdog %s %s (%.1fs late)", w.run_id, w.kind, w.step, w.late_s)
                publish(worker.app, rt, w.run_id, w.step, w.seq, w.generation)
            return len(wakes)
        except Exception:  # a Redis blip: the carriers are unchanged, the next tick tries again
            log.exception("watchdog tick failed")
            return 0

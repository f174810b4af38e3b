"""The watchdog's side of the carriers: every open run's current step is published, again if need be.

Each open run is a member of ``{prefix}carriers`` scored with the time its current step must be
published: the end of a wait (``due``), a grace period after a wake-up was published (``woken``: the
message may be lost, as kombu's Redis transport can lose one between BRPOP and its unacked record), or
the end of the lease of the execution that holds it (``running``: the execution died). ``pop_due``
hands out what is due and pushes each member's deadline to now + grace, in one script
(``carriers_pop.lua``); the caller publishes them. Several watchdogs are safe: a member is handed
out once per grace period, and the run's fence (``run_enter.lua``) drops any duplicate.

The recovery bound follows: a stranded run moves again within ``grace`` (plus one watchdog tick) of
the moment its carrier was due, or of its lease's end; while the broker queue holds a backlog, a lost
wake-up is re-published only once the queue has drained (a message may just be queued).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.replies import as_text
from aep_activator.aep.coordination.scripts import load_script


@dataclass(frozen=True)
class Wake:
    """One run whose current step is to be published."""

    run_id: str
    step: str
    seq: int
    generation: int
    kind: str  # wake (a wait ended) | rewake (a wake-up was lost) | recover (an execution died)
    late_s: float


class Carriers:
    def __init__(self, client: redis.Redis, keys: Keys, *, clock: Callable[[], float] | None = None) -> None:
        self._r = client
        self._keys = keys
        self._clock = clock
        self._pop = load_script(client, "carriers_pop")

    def pop_due(self, *, grace_s: float, queue_keys: Sequence[str] = (), limit: int = 500) -> list[Wake]:
        now = "" if self._clock is None else repr(self._clock())
        raw = self._pop(keys=[self._keys.carriers, *queue_keys], args=[now, limit, grace_s, self._keys.prefix])
        items = [as_text(x) for x in raw]
        return [
            Wake(items[i], items[i + 1], int(items[i + 2]), int(items[i + 3]), items[i + 4], float(items[i + 5]))
            for i in range(0, len(items), 6)
        ]

    def due_now(self, run_id: str) -> None:
        """Publish ``run_id``'s step at the next watchdog tick (after a wake-up could not be sent)."""
        self._r.zadd(self._keys.carriers, {run_id: 0}, xx=True)

    def deadline(self, run_id: str) -> float | None:
        score = self._r.zscore(self._keys.carriers, run_id)
        return None if score is None else float(score)

    def depth(self, *, now: float) -> tuple[int, int]:
        """``(open runs with a carrier, of which due now)``."""
        pipe = self._r.pipeline(transaction=False)
        pipe.zcard(self._keys.carriers)
        pipe.zcount(self._keys.carriers, "-inf", now)
        total, due = pipe.execute()
        return int(total), int(due)

"""What each destination dataflow maps, as a worker last read it (the preflight's cache, ``preflight.py``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from aep_activator.aep.api.client import AEPClient

DATAFLOW_CACHE_S = 60.0
"""How long a worker process trusts what a dataflow maps (positive answers only)."""


class DataflowCache:
    """Audience -> first-activation time of each dataflow, as last read, per client (sandbox) and dataflow.

    Bounded (``size`` dataflows, least recently read dropped first), so memory stays flat.
    """

    def __init__(self, ttl_s: float = DATAFLOW_CACHE_S, size: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.ttl_s = ttl_s
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, dict[str, float]]] = OrderedDict()

    def mapped(self, client: AEPClient, flow_id: str, audiences: list[str], *, fresh: bool) -> dict[str, float]:
        """What ``flow_id`` maps: the cached copy when it is recent and maps every one of ``audiences``
        (unless ``fresh``), else AEP's answer now (``NotFound`` when the dataflow does not exist)."""
        key = (client.base_url, client.sandbox or "", flow_id)
        now = self._clock()
        hit = None if fresh else self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl_s and all(a in hit[1] for a in audiences):
            self._entries.move_to_end(key)
            return hit[1]
        mapped = client.flows.get(flow_id).mapped_audiences()
        self._entries[key] = (now, mapped)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return mapped

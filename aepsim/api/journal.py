"""The request journal and call statistics behind ``/simulator/journal`` and ``/simulator/stats``.

Every request to an AEP or IMS path is recorded with the answer it got (an HTTP status, or
``"dropped"``/``"hung"`` for injected connection faults). Secrets never reach the journal: the
bearer token in ``Authorization`` and any ``client_secret``/``access_token`` value in a body or
query string are replaced by ``***``. The journal keeps the newest ``max_entries``; the counters
keep counting past that.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

MASK = "***"
SECRET_KEYS = frozenset({"client_secret", "access_token", "refresh_token", "password"})
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            out[name] = f"{scheme} {MASK}" if rest else MASK
        else:
            out[name] = value
    return out


def mask_secrets(value: Any) -> Any:
    """``value`` with every secret-named key's value replaced by ``***``, at any depth."""
    if isinstance(value, dict):
        return {k: MASK if str(k).lower() in SECRET_KEYS else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


class Journal:
    """Thread-safe, sequence-numbered request log plus per-route and per-status counters."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._seq = 0
        self._calls: Counter[str] = Counter()
        self._statuses: dict[str, Counter[str]] = {}

    def record(
        self,
        *,
        time: float,
        method: str,
        path: str,
        template: str,
        query: dict[str, Any],
        status: int | str,
        body: Any,
        headers: dict[str, str],
        created: str | None = None,
    ) -> int:
        """Append one entry (secrets masked); returns its sequence number, starting at 1."""
        route = f"{method} {template}"
        with self._lock:
            self._seq += 1
            self._entries.append(
                {
                    "seq": self._seq,
                    "time": time,
                    "method": method,
                    "path": path,
                    "template": template,
                    "query": mask_secrets(query),
                    "status": status,
                    "body": mask_secrets(body),
                    "headers": mask_headers(headers),
                    "created": created,
                }
            )
            self._calls[route] += 1
            self._statuses.setdefault(route, Counter())[str(status)] += 1
            return self._seq

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Entries with a sequence number greater than ``seq``, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > seq]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def counters(self) -> dict[str, Any]:
        """``{"calls": {route: n}, "statuses": {route: {status: n}}}``."""
        with self._lock:
            return {"calls": dict(self._calls), "statuses": {route: dict(c) for route, c in self._statuses.items()}}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._seq = 0
            self._calls.clear()
            self._statuses.clear()

"""One Redis client from one URL, whichever form kombu accepts for the broker.

``redis://``, ``rediss://`` (TLS) and ``unix://`` go to ``redis.Redis.from_url``. Sentinel URLs use
kombu's form, so the broker and the ledgers share one ``REDIS_URL``::

    sentinel://[:password@]host1:26379[/db];sentinel://host2:26379?master_name=mymaster

(``sentinels://`` asks for TLS to the master). The client then talks to the master that the sentinels
name, and follows a failover.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """``(sentinel addresses, master name, master connection kwargs)`` of a sentinel URL."""
    hosts: list[tuple[str, int]] = []
    master = "mymaster"
    kwargs: dict[str, Any] = {}
    for part in url.split(";"):
        parts = urlsplit(part.strip())
        if parts.scheme not in ("sentinel", "sentinels") or not parts.hostname:
            raise ValueError(f"not a sentinel URL part: {part!r}")
        hosts.append((parts.hostname, parts.port or 26379))
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        if parts.path.strip("/").isdigit():
            kwargs["db"] = int(parts.path.strip("/"))
        if parts.scheme == "sentinels":
            kwargs["ssl"] = True
        query = parse_qs(parts.query)
        for key in ("master_name", "service_name"):
            if query.get(key):
                master = query[key][0]
    return hosts, master, kwargs


def redis_from_url(url: str, **options: Any) -> redis.Redis:
    if url.startswith(("sentinel://", "sentinels://")):
        hosts, master, kwargs = parse_sentinel_url(url)
        # Through Any: redis-py types Sentinel from 8.2 on, and before that its calls are untyped.
        sentinel = cast(Any, Sentinel)(hosts, socket_timeout=options.get("socket_timeout", 10))
        client: redis.Redis = sentinel.master_for(master, **{**options, **kwargs})
        return client
    return redis.Redis.from_url(url, **options)

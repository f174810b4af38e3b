"""kombu's Redis transport, reusing one client per connection pool instead of building one per command.

kombu's Redis channel builds a new ``redis.Redis`` for every publish, ack, event and unacked-index
update (``Channel._create_client``, reached through ``conn_or_acquire``). redis-py 8 fills a
case-insensitive table of about 170 response callbacks in each client's ``__init__``: some 110 µs
of CPU per client on this project's bench machine. A six-step run built about 25 in the worker's main
process (receiving, acking, task events) and 5 in its pool children (publishing the next step): under
cProfile, a third of the main process's CPU.

A ``redis.Redis`` over a shared ``ConnectionPool`` holds no connection of its own (it takes one from
the pool per command), so one client per pool is equivalent: the channel keeps it and makes a new one
when its pool is replaced (kombu resets pools after a fork or a connection error). Asynchronous clients
(the consumer's BRPOP and pub/sub, which kombu keeps for the channel's life anyway) are left as they were.

``tasks.celery.celery_config`` selects these classes with ``broker_transport`` for ``redis://``,
``rediss://`` and ``sentinel://`` URLs. Nothing else in kombu's behaviour changes.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

__all__ = ["SentinelTransport", "Transport"]


class _ReusedClient:
    """Channel mixin: ``_create_client()`` returns the same sync client while the pool is the same."""

    pool: Any
    _reused: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        client = self._reused
        if client is None or client.connection_pool is not pool:
            client = super()._create_client(asynchronous=False)  # type: ignore[misc]
            self._reused = client
        return client


class Channel(_ReusedClient, kombu_redis.Channel):
    pass


class SentinelChannel(_ReusedClient, kombu_redis.SentinelChannel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def transport_for(url: str) -> str | None:
    """The ``broker_transport`` for a broker URL, or None to leave kombu's choice by scheme."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return f"{__name__}:Transport"
    if scheme == "sentinel":
        return f"{__name__}:SentinelTransport"
    return None

"""tasks/transport.py: kombu's Redis channel keeps one sync client per pool, against a real Redis."""

from __future__ import annotations

import uuid

import kombu
import pytest
import redis

from aep_activator.config.settings import Settings
from aep_activator.tasks.celery import celery_config
from aep_activator.tasks.transport import SentinelTransport, Transport, _ReusedClient, transport_for


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "aep_activator.tasks.transport:Transport"),
        ("rediss://:pw@redis.internal:6380/1", "aep_activator.tasks.transport:Transport"),
        ("sentinel://s1:26379;sentinel://s2:26379?master_name=m", "aep_activator.tasks.transport:SentinelTransport"),
        ("unix:///run/redis.sock", None),
    ],
)
def test_the_broker_transport_follows_the_url_scheme(url: str, expected: str | None) -> None:
    assert transport_for(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/3", Transport),
        ("sentinel://s1:26379;sentinel://s2:26379?master_name=m", SentinelTransport),
    ],
)
def test_celery_config_selects_it_and_kombu_resolves_it(url: str, expected: type) -> None:
    config = celery_config(Settings(redis_url=url))
    conn = kombu.Connection(config["broker_url"], transport=config["broker_transport"])  # no connection is made
    assert conn.get_transport_cls() is expected
    assert issubclass(expected.Channel, _ReusedClient)


def test_one_client_per_pool_and_a_new_one_when_the_pool_is_replaced(redis_url: str) -> None:
    queue = f"test-transport-{uuid.uuid4().hex}"
    try:
        _reuse_then_replace(redis_url, queue)
    finally:  # the queue and kombu's binding set for it (_kombu.binding.<queue>)
        with redis.Redis.from_url(redis_url) as client:
            for key in client.scan_iter(match=f"*{queue}*"):
                client.delete(key)


def _reuse_then_replace(redis_url: str, queue: str) -> None:
    with kombu.Connection(redis_url, transport=Transport) as conn:
        channel = conn.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        assert first.connection_pool is channel.pool
        # The client works as kombu's own did: a publish and a get go through it.
        with conn.SimpleQueue(queue) as q:
            q.put({"n": 1})
            assert q.get(timeout=5).payload == {"n": 1}
        assert channel._create_client() is first
        channel._disconnect_pools()  # what kombu does after a fork or a connection error
        second = channel._create_client()
        assert second is not first and second.connection_pool is channel.pool
        assert second.ping()
        # Asynchronous clients (BRPOP, pub/sub) are kombu's as before: a new one each time.
        assert channel._create_client(asynchronous=True) is not channel._create_client(asynchronous=True)

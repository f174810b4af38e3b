"""REDIS_URL forms: the ledgers accept what kombu accepts for the broker."""

from __future__ import annotations

import pytest
import redis

from aep_activator.aep.coordination.redis_url import parse_sentinel_url, redis_from_url


def test_a_multi_host_sentinel_url_names_every_sentinel_the_master_and_the_password() -> None:
    hosts, master, kwargs = parse_sentinel_url(
        "sentinel://:pw@s1:26379/2;sentinel://:pw@s2:26380/2?master_name=primary"
    )
    assert hosts == [("s1", 26379), ("s2", 26380)]
    assert master == "primary"
    assert kwargs == {"password": "pw", "db": 2}


def test_sentinels_scheme_asks_for_tls_to_the_master() -> None:
    _, master, kwargs = parse_sentinel_url("sentinels://s1?service_name=m")
    assert master == "m" and kwargs["ssl"] is True


def test_a_sentinel_url_gives_a_client_bound_to_the_named_master() -> None:
    client = redis_from_url("sentinel://127.0.0.1:1?master_name=mymaster")
    assert "mymaster" in repr(client.connection_pool)
    client.close()


def test_plain_and_tls_urls_go_to_redis_from_url(redis_url: str) -> None:
    with redis_from_url(redis_url) as client:
        assert client.ping()
    tls = redis_from_url("rediss://:secret@example.invalid:6380/0")
    assert tls.connection_pool.connection_kwargs["port"] == 6380
    tls.close()


def test_a_mixed_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a sentinel URL part"):
        parse_sentinel_url("sentinel://a:1;redis://b:2")
    assert isinstance(redis.Redis, type)

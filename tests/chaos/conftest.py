"""Chaos fixtures: the scale knob, figure reporting, and a private Redis that a test may crash.

- ``CHAOS_SCALE`` is ``ci`` (default: small, so ``make test`` stays quick) or ``full`` (``make chaos``).
  :func:`scaled` picks the number for the current scale.
- ``figures``: ``figures("name", value, ...)`` prints one line straight to the terminal (even without
  ``-s``), keeps it in the captured output, records it as a junit property, and repeats every figure in
  a "chaos figures" section at the end of the session.
- ``private_redis``: a ``redis-server`` of our own (never the shared 6379) in a temporary directory,
  which the test can kill and restart on the same port and directory.
- ``make_stack`` is the integration fixture, re-exported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import make_stack  # noqa: F401

SCALE = os.environ.get("CHAOS_SCALE", "ci").strip().lower() or "ci"
if SCALE not in ("ci", "full"):
    raise pytest.UsageError(f"CHAOS_SCALE must be 'ci' or 'full', not {SCALE!r}")

_ALL_FIGURES: list[str] = []


def scaled(ci: int, full: int) -> int:
    """``full`` under ``CHAOS_SCALE=full``, else ``ci``."""
    return full if SCALE == "full" else ci


@pytest.fixture
def figures(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None]
) -> Callable[..., None]:
    """Report one figure line: ``figures("runs lost", 0)`` or ``figures("table", multi_line_text)``."""
    test = request.node.name

    def emit(name: str, value: object) -> None:
        record_property(name, value)
        text = f"[chaos {SCALE}] {test}: {name}: {value}"
        _ALL_FIGURES.append(text)
        print(text)
        with capsys.disabled():
            print("\n" + text, flush=True)

    return emit


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _ALL_FIGURES:
        terminalreporter.write_sep("-", f"chaos figures (CHAOS_SCALE={SCALE})")
        for line in _ALL_FIGURES:
            terminalreporter.write_line(line)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    assert port != 6379
    return port


class PrivateRedis:
    """A redis-server on a fixed loopback port and directory, so a restart finds its own data again."""

    def __init__(self, *, aof: bool) -> None:
        self.aof = aof
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="aep-chaos-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        if not self.aof:
            persistence = ["--appendonly", "no", "--save", ""]
        return [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--maxmemory-policy", "noeviction", *persistence,
        ]  # fmt: skip

    def start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), redis.Redis(port=self.port, socket_timeout=0.5) as r:
                if r.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"private redis did not start: {(self.dir / 'redis.log').read_text()[-1000:]}")

    def crash(self) -> None:
        """kill -9: no SHUTDOWN, no final save; only what was fsynced survives."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[Callable[..., PrivateRedis]]:
    servers: list[PrivateRedis] = []

    def make(*, aof: bool) -> PrivateRedis:
        if shutil.which("redis-server") is None:
            pytest.skip("no redis-server on PATH: the Redis restart scenario needs a server of its own")
        server = PrivateRedis(aof=aof)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()

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
import gc
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
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

    def __init__(self, *, aof: bool, extra: tuple[str, ...] = ()) -> None:
        self.aof = aof
        self.extra = extra
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
            "--maxmemory-policy", "noeviction", *persistence, *self.extra,
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


def repoint_app(settings: object | None) -> None:
    """Point this process's Celery app (and runtime) at other settings, dropping its cached connections.

    ``workers.app.configure`` updates the config, but the app keeps its broker pool, producer pool and
    result backend, which stay bound to the old Redis. Tests on a private Redis must drop them both ways.
    """
    from aep_activator.tasks import runtime
    from aep_activator.tasks.celery import configure
    from aep_activator.workers import app

    with warnings.catch_warnings():
        # The old connections may point at a server that is gone; closing them is best effort.
        warnings.simplefilter("ignore", ResourceWarning)
        if app._pool is not None:
            with contextlib.suppress(Exception):
                app._pool.force_close_all()
        if app.amqp._producer_pool is not None:
            with contextlib.suppress(Exception):
                app.amqp._producer_pool.force_close_all()
        backend = app._backend
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.result_consumer.stop()
            with contextlib.suppress(Exception):
                backend.client.connection_pool.disconnect()
        with contextlib.suppress(Exception):
            runtime.runtime().redis.close()
        app._pool = None
        app.amqp._producer_pool = None
        app._backend_cache = None
        app._local.backend = None
        if settings is None:
            runtime.configure(None)
        else:
            configure(settings)  # type: ignore[arg-type]
        gc.collect()


# --- requests and checks shared by the scenarios ------------------------------------------------------

SEGMENT_POST = "/data/core/ups/segment/jobs"
EXPORT_POST = "/data/core/ups/export/jobs"
ADHOC_POST = "/data/core/activation/disflowprovider/adhocrun"
S3 = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
SFTP = "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
AUD_A = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
AUD_B = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
AUD_C = "3a1b2c3d-4e5f-6789-abcd-ef0123456789"
# Every (dataflow, audience) pair the simulator's fixture maps; AUD_B is on both dataflows.
PAIRS = [(S3, AUD_A), (S3, AUD_B), (SFTP, AUD_B), (SFTP, AUD_C)]


def v1_request(flow: str, audience: str, **extra: object) -> dict[str, object]:
    """The tutorial's full chain (segment job, export job, ad-hoc v1) for one audience on one dataflow."""
    return {
        "activation_info": {flow: [audience]},
        "segment_ids": [audience],
        "export_job": {
            "fields": "identities.id,personalEmail.address",
            "filter": {"segments": [{"segmentId": audience, "segmentNs": "ups", "status": ["realized"]}]},
            "destination": {"datasetId": "5b7c86968f7b6501e21ba9df"},
            "schema": {"name": "_xdm.context.profile"},
        },
        "version": 1,
        "started_by": "chaos",
        **extra,
    }


def v2_request(activation_info: dict[str, list[str]], **extra: object) -> dict[str, object]:
    """Ad-hoc v2 without the segment step: the quickest chain (run_activation → poll_activation)."""
    return {"activation_info": activation_info, "version": 2, "segment_job": False, "started_by": "chaos", **extra}


def duplicate_ids(runs: list, *, segment: bool, export: bool) -> dict[str, int]:
    """How many AEP ids are shared by two or more of ``runs`` (each run must own its own)."""
    out = {}
    if segment:
        ids = [r.segment_job_id for r in runs]
        out["segment_job"] = len(ids) - len(set(ids))
    if export:
        ids = [r.export_job_id for r in runs]
        out["export_job"] = len(ids) - len(set(ids))
    flow_runs = [o["run_id"] for r in runs for o in r.flow_runs]
    out["flow_run"] = len(flow_runs) - len(set(flow_runs))
    return out

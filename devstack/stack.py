"""A local stack: Redis + the simulator + real worker processes. Used by the demo, tests, chaos and bench.

Every stack has its own key prefix and queue name, so any number of them (and a real deployment) can
share one Redis without touching each other's quotas, runs or messages. What its simulator's journal
says about the exactly-once promise (POSTs, accepted POSTs, owners, breaches) is in promises.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.http.tornado_server import SimulatorServer
from aep_activator.config.settings import Settings, load_settings
from aep_activator.devstack.promises import JournalChecks

REPO_ROOT = Path(__file__).resolve().parent.parent

FAST_POLLS = {
    "POLL_SEGMENT_INITIAL_S": "0.2",
    "POLL_SEGMENT_CAP_S": "1",
    "POLL_EXPORT_INITIAL_S": "0.2",
    "POLL_EXPORT_CAP_S": "1",
    "POLL_ACTIVATION_INITIAL_S": "0.2",
    "POLL_ACTIVATION_CAP_S": "1",
    "POLL_FACTOR": "1.5",
    "RETRY_INITIAL_S": "0.2",
    "RETRY_CAP_S": "2",
    "DELAY_PUMP_INTERVAL_S": "0.1",
}


@dataclass
class Stack(JournalChecks):
    redis_url: str
    simulator: SimulatorServer
    prefix: str = field(default_factory=lambda: f"aep-stack:{uuid.uuid4().hex[:10]}:")
    env_overrides: dict[str, str] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aep-stack-")))
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        redis_url: str,
        *,
        sim_config: SimulatorConfig | None = None,
        env: dict[str, str] | None = None,
        prefix_root: str = "aep-stack",
    ) -> Stack:
        sim = SimulatorServer(sim_config or SimulatorConfig(speed=600, seed=7))
        sim.start_in_thread()
        prefix = f"{prefix_root}:{uuid.uuid4().hex[:10]}:"
        return cls(redis_url=redis_url, simulator=sim, prefix=prefix, env_overrides=dict(env or {}))

    @property
    def sim_url(self) -> str:
        assert self.simulator.base_url
        return self.simulator.base_url

    @property
    def queue(self) -> str:
        return "q-" + self.prefix.rstrip(":").replace(":", "-")

    def env(self) -> dict[str, str]:
        fixture = self.simulator.state.fixture
        client = fixture.clients[0]
        values = {
            "REDIS_URL": self.redis_url,
            "AEP_KEY_PREFIX": self.prefix,
            "AEP_QUEUE": self.queue,
            "AEP_BASE_URL": self.sim_url,
            "AEP_IMS_URL": self.sim_url,
            "AEP_CLIENT_ID": client.clientId,
            "AEP_CLIENT_SECRET": client.clientSecret,
            "AEP_ORG_ID": fixture.orgId,
            "AEP_SANDBOX_NAME": "prod",
            "AEP_CONNECT_TIMEOUT_S": "2",
            "AEP_READ_TIMEOUT_S": "5",
            "LOOK_SETTLE_S": "8",
            "WATCHDOG_GRACE_S": "5",
            "VISIBILITY_TIMEOUT_S": "30",
            "TASK_TIME_LIMIT_S": "20",
            # The few Celery results kept (activation.start's, the reconciler's) are keyed outside the
            # prefix, where delete_keys cannot find them: a test's or the demo's expire within minutes,
            # not after the shipped week in a Redis that CI shares.
            "RESULT_EXPIRES_S": "600",
            **FAST_POLLS,
        }
        values.update(self.env_overrides)
        return values

    def settings(self) -> Settings:
        return load_settings(**{k.lower(): v for k, v in self.env().items()})

    def start_worker(
        self,
        *,
        concurrency: int = 2,
        name: str | None = None,
        pool: str = "prefork",
        app: str = "aep_activator.workers",
        extra_args: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """A real ``celery worker`` process on this stack's queue; ``app`` is what ``celery -A`` loads, and
        ``extra_args`` go to ``celery worker`` (``--include`` of a test's own tasks)."""
        name = name or f"w{len(self.workers) + 1}"
        env = {**os.environ, **self.env(), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "-Q",
                self.queue,
                f"--hostname={name}-{self.prefix.rstrip(':')}@%h",
                f"--concurrency={concurrency}",
                f"--pool={pool}",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
                *extra_args,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill -9 reaches the pool children too
        )
        log.close()
        self.workers.append(proc)
        return proc

    def wait_worker_ready(self, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
        name = Path(self.log_dir)
        deadline = time.monotonic() + timeout_s
        logs = sorted(name.glob("*.log"))
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}: {self.worker_log()[-2000:]}")
            if " ready." in self.worker_log():
                return
            time.sleep(0.05)
        raise TimeoutError(f"worker not ready after {timeout_s}s: {[p.name for p in logs]}")

    def start_api(self, port: int, *, env: dict[str, str] | None = None, timeout_s: float = 30) -> str:
        """``aep-activator api`` on loopback ``port`` (a real process); returns its base URL once /healthz answers."""
        import urllib.request

        full = {**os.environ, **self.env(), **(env or {}), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_dir / "api.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "aep_activator.workers", "api", "--address", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.servers.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.log_dir / "api.log").read_text()[-2000:]
                raise RuntimeError(f"api exited with {proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return url
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"api not answering after {timeout_s}s")

    def worker_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def wait_log(self, text: str, timeout_s: float = 10.0) -> str:
        """The workers' log once it holds ``text``. A run is terminal once its last step has *left* the
        ledger; Celery logs that task's ``succeeded`` line just after, so a test reading the log at
        once may be ahead of it."""
        deadline = time.monotonic() + timeout_s
        while text not in (log := self.worker_log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the workers' log after {timeout_s}s:\n{log[-3000:]}")
            time.sleep(0.1)
        return log

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9 the worker and its pool children (a crash, not a shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_worker(self, proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill_worker(proc)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        for proc in [*self.servers, *self.workers]:
            self.stop_worker(proc)
        self.workers.clear()
        self.servers.clear()
        self.simulator.stop()
        self.delete_keys()

    def delete_keys(self) -> None:
        with redis.Redis.from_url(self.redis_url) as client:
            keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
            # The broker queue of this stack (kombu keys are named by the queue).
            for key in client.scan_iter(match=f"*{self.queue}*", count=1000):
                client.delete(key)

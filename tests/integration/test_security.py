"""Secrets stay secret, and nothing listens beyond loopback.

A whole v1 chain runs with known secret values (a canary client secret, and the IMS token the simulator
issues for it). Neither may appear in the worker log (at DEBUG), in any Redis key's value (Celery
messages, results, the run ledger, the delay queue), or in Flower's task API. The one place the token
lives by design is the IMS token cache key ``{prefix}ims:token:*``: it is excluded explicitly.
"""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.http.tornado_server import SimulatorServer
from aep_activator.devstack.stack import REPO_ROOT, Stack
from aep_activator.tasks import start_activation
from tests.integration.conftest import EXAMPLE, wait_for_runs

pytestmark = pytest.mark.integration

SECRET = "S3CRET-canary-7d1f0c2a9b"
CLIENT = "sec-client"
LOOPBACK = {"127.0.0.1", "::1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_debug_worker(stack: Stack) -> subprocess.Popen[bytes]:
    """Stack.start_worker, at --loglevel=DEBUG (Stack has no knob for the level)."""
    env = {**os.environ, **stack.env(), "PYTHONUNBUFFERED": "1"}
    log = (stack.log_dir / "debug.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aep_activator.workers", "worker", "-Q", stack.queue,
         f"--hostname=debug-{stack.prefix.rstrip(':')}@%h", "--concurrency=2", "--loglevel=DEBUG",
         "--without-mingle", "--without-gossip"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    stack.workers.append(proc)  # Stack.stop stops it
    return proc


def dump_redis(client, skip_prefix: str) -> dict[str, str]:
    """Every key of the database and its value as text, except keys starting with ``skip_prefix``."""
    out = {}
    for raw in client.scan_iter(count=1000):
        key = raw.decode(errors="replace")
        if key.startswith(skip_prefix):
            continue
        kind = client.type(raw).decode()
        if kind == "string":
            value = client.get(raw)
        elif kind == "hash":
            value = client.hgetall(raw)
        elif kind == "list":
            value = client.lrange(raw, 0, -1)
        elif kind == "set":
            value = client.smembers(raw)
        elif kind == "zset":
            value = client.zrange(raw, 0, -1, withscores=True)
        else:
            value = kind
        out[key] = repr(value)
    return out


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket of ``pid`` and its children."""
    proc = psutil.Process(pid)
    found = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def wait_listening(pid: int, timeout_s: float = 30) -> list[tuple[str, int]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := listening(pid):
            return found
        time.sleep(0.1)
    raise AssertionError(f"process {pid} never listened")


def test_no_secret_or_token_reaches_logs_redis_or_flower_during_a_whole_chain(make_stack, redis_client, tmp_path):
    from aep_activator.workers.flower import start_flower_process

    stack = make_stack(
        SimulatorConfig(speed=600, seed=61, client_credentials={CLIENT: SECRET}),
        env={"AEP_CLIENT_ID": CLIENT, "AEP_CLIENT_SECRET": SECRET},
    )
    flower_port, creds = free_port(), "ops:flower-pass-4b2e"
    flower_log = (tmp_path / "flower.log").open("wb")
    flower = start_flower_process(
        stack.settings(),
        address="127.0.0.1",
        port=flower_port,
        env={**stack.env(), "FLOWER_BASIC_AUTH": creds, "FLOWER_DB": str(tmp_path / "flower.db")},
        stdout=flower_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert ("127.0.0.1", flower_port) in wait_listening(flower.pid)
        worker = start_debug_worker(stack)
        stack.wait_worker_ready(worker)
        run_id = start_activation(Path(REPO_ROOT / EXAMPLE).read_text())
        (run,) = wait_for_runs(stack, [run_id], timeout_s=60)
        assert run.status == "succeeded", (run.error, run.timeline)

        # The token the workers used: cached in Redis (its one home by design), issued by the simulator.
        token_keys = list(redis_client.scan_iter(match=f"{stack.prefix}ims:token:*"))
        assert len(token_keys) == 1, token_keys
        cached = redis_client.get(token_keys[0]).decode()
        token = next(part for part in cached.replace('"', " ").split() if part.startswith("sim."))
        assert stack.simulator.ctx.tokens.client_of(token) == CLIENT

        log = stack.wait_log(f"[{run.task_id}] succeeded")  # the whole run's log, its last step's line too
        assert "DEBUG" in log and run_id in log  # the log is the verbose one, and about our run
        assert SECRET not in log and token not in log

        # Every key in the database (other tests' too: none may hold our values), except the token cache.
        dump = dump_redis(redis_client, skip_prefix=f"{stack.prefix}ims:token:")
        ours = [k for k in dump if k.startswith(stack.prefix) or "celery-task-meta-" in k or stack.queue in k]
        assert any(k.startswith(f"{stack.prefix}run:") for k in ours) and any("celery-task-meta-" in k for k in ours)
        leaks = [k for k, v in dump.items() if SECRET in v or token in v or SECRET in k or token in k]
        assert not leaks, leaks

        api = f"http://127.0.0.1:{flower_port}/api/tasks"
        assert requests.get(api, timeout=10).status_code == 401
        deadline = time.monotonic() + 20
        while True:
            answer = requests.get(api, auth=tuple(creds.split(":", 1)), timeout=10)
            assert answer.status_code == 200, answer.status_code
            if run_id in answer.text or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert run_id in answer.text, "Flower saw none of the run's tasks; the check would prove nothing"
        assert SECRET not in answer.text and token not in answer.text
    finally:
        flower.terminate()
        try:
            flower.wait(10)
        except subprocess.TimeoutExpired:
            flower.kill()
            flower.wait()
        flower_log.close()
    assert SECRET not in (tmp_path / "flower.log").read_text(errors="replace")


def test_flower_refuses_to_start_without_basic_auth(make_stack, tmp_path):
    from aep_activator.workers.flower import FlowerAuthMissing, start_flower_process

    stack = make_stack()
    settings = stack.settings()
    assert settings.flower_basic_auth is None
    with pytest.raises(FlowerAuthMissing, match="FLOWER_BASIC_AUTH"):
        start_flower_process(settings, address="127.0.0.1", port=free_port(), env={})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    result = subprocess.run(
        [sys.executable, "-m", "aep_activator.workers", "flower"],
        env={**env, **stack.env(), "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_the_simulator_cli_binds_loopback_by_default(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aep_activator.workers", "simulator", "--port", str(port)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert wait_listening(proc.pid) == [("127.0.0.1", port)]
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_in_process_simulator_binds_loopback_by_default():
    assert inspect.signature(SimulatorServer.start_in_thread).parameters["host"].default == "127.0.0.1"
    with SimulatorServer(SimulatorConfig()) as server:
        url = server.start_in_thread()
        assert url.startswith("http://127.0.0.1:")
        mine = listening(os.getpid())
        port = int(url.rsplit(":", 1)[1])
        assert [ip for ip, p in mine if p == port] == ["127.0.0.1"]


def test_the_demo_flower_and_the_worker_stack_listen_on_loopback_only(make_stack):
    from aep_activator.devstack import demo

    stack = make_stack()
    worker = stack.start_worker()
    stack.wait_worker_ready(worker)
    flower, url, _creds = demo._start_flower(stack)
    assert flower is not None
    try:
        assert url.startswith("http://127.0.0.1:")
        sockets = wait_listening(flower.pid)
        assert {ip for ip, _ in sockets} <= LOOPBACK, sockets
        assert {ip for ip, _ in listening(worker.pid)} <= LOOPBACK
        assert {ip for ip, _ in listening(os.getpid())} <= LOOPBACK  # the simulator and anything else here
    finally:
        flower.terminate()
        flower.wait(10)

"""Integration fixtures: a real Redis, the simulator over HTTP, and real `celery worker` processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from aep_activator.aep.coordination.runs import RunRecord
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.devstack.stack import Stack
from aep_activator.tasks import runtime
from aep_activator.tasks.celery import configure
from tests.consolekit import chromium_present

EXAMPLE = "examples/activation-request.json"


@pytest.fixture
def make_stack(redis_url: str) -> Iterator[Callable[..., Stack]]:
    """Build a stack (simulator + settings + unique prefix/queue) and point this process at it."""
    stacks: list[Stack] = []

    def make(sim_config: SimulatorConfig | None = None, env: dict[str, str] | None = None) -> Stack:
        stack = Stack.start(redis_url, sim_config=sim_config, env=env)
        stacks.append(stack)
        configure(stack.settings())
        return stack

    yield make
    for stack in stacks:
        stack.stop()
    runtime.configure(None)


def wait_for_runs(stack: Stack, run_ids: list[str], timeout_s: float = 60) -> list[RunRecord]:
    """Poll the run ledger (from the test process) until every run is terminal."""
    deadline = time.monotonic() + timeout_s
    ledger = runtime.runtime().ledger
    while True:
        records = [ledger.get(r) for r in run_ids]
        if all(r is not None and r.terminal for r in records):
            return [r for r in records if r is not None]
        if time.monotonic() > deadline:
            open_runs = [(r.run_id, r.status, r.step, r.waiting_reason) for r in records if r and not r.terminal]
            raise AssertionError(f"runs still open after {timeout_s}s: {open_runs}\n{stack.worker_log()[-4000:]}")
        time.sleep(0.1)


@pytest.fixture
def chromium() -> None:
    """Debian's chromium for the browser tests: missing, they fail under CI (.ci/run installs it), else skip."""
    if not chromium_present():
        message = "chromium is missing: apt-get install -y chromium (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

"""The README's Python producer, exactly as written, in a fresh interpreter: its run is executed.

A fresh ``python -c`` imports only ``from aep_activator import ActivationRequest, start_activation``, as
the README's snippet does, with nothing but the environment naming Redis and the simulator. It must not
fall back on Celery's ``current_app`` (whose default broker is amqp on localhost: where a RabbitMQ
listens, as on this machine, the message would land there silently and the run stay queued forever;
where nothing listens, the publish would raise after the run was recorded). The run must reach
``succeeded`` through a real worker, whatever listens on localhost:5672.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aep_activator.devstack.stack import Stack
from tests.integration.conftest import EXAMPLE, wait_for_runs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

README_PRODUCER = textwrap.dedent(
    """
    import json, sys
    from aep_activator import ActivationRequest, start_activation

    request = json.loads(sys.stdin.read())
    run_id = start_activation(ActivationRequest(**request))
    modules = {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}
    print(json.dumps({"run_id": run_id, "modules": modules}))
    """
)
"""The README's snippet (the request read from stdin), then what this interpreter holds in sys.modules."""


def producer_env(stack: Stack) -> dict[str, str]:
    """The stack's environment, and nothing of this test process's Celery or Python path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "AEP_", "PYTHONPATH"))}
    return {**env, **stack.env()}


def run_readme_producer(
    stack: Stack, request: dict[str, Any], cwd: Path, python: str = sys.executable
) -> dict[str, Any]:
    """Start one run from a fresh interpreter in ``cwd``; returns its run id and its ``sys.modules`` files."""
    done = subprocess.run(
        [python, "-c", README_PRODUCER], input=json.dumps(request), cwd=cwd, env=producer_env(stack),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def amqp_listens() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5672)) == 0


def test_a_fresh_interpreter_running_the_readme_snippet_starts_a_run_a_worker_takes_to_succeeded(make_stack, tmp_path):
    # The watchdog would publish a stranded run after WATCHDOG_GRACE_S: far beyond this test, so only the
    # producer's own publish can wake the run.
    stack = make_stack(env={"WATCHDOG_GRACE_S": "600"})
    stack.wait_worker_ready(stack.start_worker())
    request = json.loads((ROOT / EXAMPLE).read_text())
    # Run from an empty folder: the repository's top-level folders are not on the path there.
    answer = run_readme_producer(stack, request, tmp_path)
    (run,) = wait_for_runs(stack, [answer["run_id"]])
    assert run.status == "succeeded", (run.error, run.timeline, "amqp on 5672" if amqp_listens() else "")
    assert run.started_by == "example"
    assert stack.posts() == {
        "/ims/token/v3": 1,
        "/data/core/ups/segment/jobs": 1,
        "/data/core/ups/export/jobs": 1,
        "/data/core/activation/disflowprovider/adhocrun": 1,
    }
    # The interpreter never loaded a Celery app of its own choosing: only the package's.
    assert "aep_activator.tasks.celery" in answer["modules"]

"""``make screenshots``: the README's console screenshots (docs/console-runs.png, docs/console-run.png).

Starts a Redis (or uses REDIS_URL's), the simulator, a worker and ``aep-activator api``, runs a few
activations (one succeeds, one is cancelled, one waits on AEP) and photographs the console with Debian's
chromium through Playwright. Writes tracked files, so CI never runs it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import requests

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.devstack.embedded_redis import provision
from aep_activator.devstack.stack import REPO_ROOT, Stack
from aep_activator.workers.api.keys import new_key
from tests.consolekit import browser, free_port

FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUDIENCES = ["4afe34ae-8c98-4513-8a1d-67ccaa54bc05", "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"]
OUT = REPO_ROOT / "docs"


def main() -> None:
    server = provision(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", allow_fake=False)
    key, entry = new_key("ops", "ops")
    stack = Stack.start(server.url, sim_config=SimulatorConfig(speed=120, seed=3), env={"API_KEYS": entry},
                        prefix_root="aep-shots")  # fmt: skip
    try:
        worker = stack.start_worker(concurrency=2, name="shots")
        base = stack.start_api(free_port())
        stack.wait_worker_ready(worker, timeout_s=60)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"

        def start(audience: str, by: str, **extra: object) -> str:
            body = {"activation_info": {FLOW: [audience]}, "version": 2, "segment_job": True, "started_by": by, **extra}
            answer = api.post(f"{base}/v1/runs", json=body, timeout=10)
            answer.raise_for_status()
            return str(answer.json()["run_id"])

        done = start(AUDIENCES[0], "nightly")
        wait_for(api, base, done, "succeeded")
        cancelled = start(AUDIENCES[1], "billing-service")
        time.sleep(2)
        api.post(f"{base}/v1/runs/{cancelled}/cancel", timeout=60).raise_for_status()
        start(AUDIENCES[0], "crm-sync", segment_job=False)
        time.sleep(0.5)
        OUT.mkdir(exist_ok=True)
        with browser() as context:
            page = context.new_page()
            page.goto(f"{base}/console/login")
            page.fill("input[name=key]", key)
            page.click("button[type=submit]")
            page.wait_for_url("**/console/runs")
            page.screenshot(path=str(OUT / "console-runs.png"), full_page=True)
            page.goto(f"{base}/console/runs/{done}")
            page.screenshot(path=str(OUT / "console-run.png"), full_page=True)
        for name in ("console-runs.png", "console-run.png"):
            print(f"wrote {Path('docs') / name}")
    finally:
        stack.stop()
        server.stop()


def wait_for(api: requests.Session, base: str, run_id: str, status: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while api.get(f"{base}/v1/runs/{run_id}", timeout=5).json()["status"] != status:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} is not {status} after {timeout_s}s")
        time.sleep(0.2)


if __name__ == "__main__":
    main()

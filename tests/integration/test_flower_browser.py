"""Flower in a real browser (Debian's chromium, headless, driven by Playwright as the console's test is) against
a real worker: what ops see for a waiting step and for a cancelled one (README, *Flower*).

- A step that waits on an AEP poll is ``RETRY``, and its *Exception* field is the reason in words (the AEP job,
  its AEP status and the next check), not a traceback.
- The tasks table (filled by Flower's XHR) shows the arguments: the run id to search by.
- After ``aep-activator cancel``, the waiting step is ``REVOKED``: nothing looks alive.

CI installs chromium (.ci/run), so there this test never skips.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.tasks.runtime import runtime
from aep_activator.workers.flower import start_flower_process
from tests.consolekit import browser, free_port

pytestmark = pytest.mark.integration

BINARY = str(Path(sys.executable).with_name("aep-activator"))
FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUDIENCE = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
USER, PASSWORD = "ops", "flower-test-pw"


def wait_flower(base: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{base}/workers", headers={"Authorization": auth}),
                                        timeout=2) as resp:  # fmt: skip
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


def test_flower_shows_why_a_step_waits_and_that_a_cancelled_one_is_revoked(make_stack, chromium) -> None:
    # Speed 1 and a 30 s first poll: the segment job stays NEW/PROCESSING, so the poll step waits (RETRY).
    slow_polls = {"POLL_SEGMENT_INITIAL_S": "30", "POLL_SEGMENT_CAP_S": "60"}
    stack = make_stack(SimulatorConfig(speed=1, seed=15), env=slow_polls)
    env = {**stack.env(), "FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}", "FLOWER_DB": str(stack.log_dir / "flower.db")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = stack.log_dir / "flower.log"
    with open(log, "ab") as out:
        flower = start_flower_process(stack.settings(), address="127.0.0.1", port=port, env=env, stdout=out,
                                      stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_flower(base, flower, log)  # Flower listens to events before the worker sends any
        worker = stack.start_worker()
        stack.wait_worker_ready(worker)
        started = subprocess.run([BINARY, "run", "--json", "-d", f"{FLOW}={AUDIENCE}", "--version", "2"],
                                 env={**os.environ, **env}, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert started.returncode == 0, started.stderr
        run_id = json.loads(started.stdout)["run_id"]
        ledger = runtime().ledger
        deadline = time.monotonic() + 60
        while True:
            record = ledger.get(run_id, timeline=False)
            if record and record.step == "poll_segment_job" and record.waiting_reason:
                break
            assert time.monotonic() < deadline, (record, stack.worker_log()[-3000:])
            time.sleep(0.2)
        task_id = record.task_id

        with browser(http_credentials={"username": USER, "password": PASSWORD}) as context:
            page = context.new_page()
            page.goto(f"{base}/task/{task_id}")
            expect(page.locator("body")).to_contain_text("RETRY", timeout=20_000)
            text = page.locator("body").inner_text()
            exception = re.search(r"exception\s+(.*)", text, re.IGNORECASE)
            assert exception, text
            assert re.match(r"segment job \S+ is (NEW|QUEUED|PROCESSING); next check in ", exception.group(1)), text
            assert "Traceback" not in exception.group(1) and "Waiting(" not in exception.group(1)
            # The README's picture of it (make screenshots sets SCREENSHOTS_DIR=docs); else a scratch copy.
            shot = Path(os.environ.get("SCREENSHOTS_DIR") or stack.log_dir) / "flower-waiting-task.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            page.goto(f"{base}/tasks")
            # As the README says: search for the run id (other stacks on this Redis send events too).
            page.get_by_role("searchbox").fill(run_id)
            row = page.locator("table#tasks-table tbody tr", has_text=task_id)
            expect(row).to_be_visible(timeout=20_000)  # the table is filled by Flower's XHR
            expect(row).to_contain_text(run_id)  # the args column: the run id
            expect(row).to_contain_text("next check in")  # the Exception column
            expect(page.locator("table#tasks-table thead")).to_contain_text("args")

            cancelled = subprocess.run([BINARY, "cancel", run_id], env={**os.environ, **env}, capture_output=True,
                                       text=True, timeout=60)  # fmt: skip
            assert cancelled.returncode == 0, cancelled.stderr
            assert f"run {run_id} is cancelled" in cancelled.stdout
            rt = runtime()
            assert rt.redis.zscore(rt.keys.carriers, run_id) is None  # out of the delay queue: nothing wakes it
            page.goto(f"{base}/task/{task_id}")
            expect(page.locator("body")).to_contain_text("REVOKED", timeout=20_000)
            assert "RETRY" not in page.locator("dl, table").first.inner_text()
    finally:
        flower.terminate()
        try:
            flower.wait(timeout=10)
        except subprocess.TimeoutExpired:
            flower.kill()
            flower.wait()

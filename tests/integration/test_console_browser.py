"""The run console in a real browser (Debian's chromium, driven by Playwright) against the real stack: a worker,
the simulator over HTTP and ``aep-activator api`` as its own process on a free loopback port.

It signs in with an ops key, watches one run go from running to succeeded on its auto-refreshing page, and
presses Cancel on another. CI installs chromium (.ci/run), so there this test never skips.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.workers.api.keys import new_key
from tests.consolekit import browser, free_port

pytestmark = pytest.mark.integration

FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"


def request(audience: str) -> dict[str, Any]:
    return {"activation_info": {FLOW: [audience]}, "version": 2, "segment_job": True, "started_by": "browser-test"}


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/console/runs")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/runs$"))


def test_the_console_shows_a_run_succeed_and_cancels_another_in_a_real_browser(make_stack, chromium) -> None:
    key, entry = new_key("ops1", "ops")
    # Speed 100: a segment job takes about 8 s, long enough to see a run running and to cancel one.
    stack = make_stack(SimulatorConfig(speed=100, seed=21), env={"API_KEYS": entry})
    worker = stack.start_worker(concurrency=2)
    base = stack.start_api(free_port())
    stack.wait_worker_ready(worker)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    first = api.post(f"{base}/v1/runs", json=request("4afe34ae-8c98-4513-8a1d-67ccaa54bc05"), timeout=10)
    assert first.status_code == 201, first.text
    run_id = first.json()["run_id"]

    with browser() as context:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the Cancel button asks for confirmation
        sign_in(page, base, key)
        expect(page.locator(f"tr[data-run='{run_id}']")).to_be_visible()
        page.goto(f"{base}/console/runs/{run_id}")
        status = page.locator("#status")
        expect(status).to_have_text(re.compile("queued|running"), timeout=15_000)
        expect(status).to_have_text("running", timeout=15_000)
        expect(page.locator("#timeline")).to_contain_text("create_segment_job")
        expect(status).to_have_text("succeeded", timeout=90_000)  # the page reloads itself while the run is open
        expect(page.locator("#timeline")).to_contain_text("all flow runs succeeded")
        expect(page.locator("#cancel")).to_have_count(0)

        second = api.post(f"{base}/v1/runs", json=request("7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"), timeout=10)
        other = second.json()["run_id"]
        page.goto(f"{base}/console/runs/{other}")
        expect(page.locator("#status")).to_have_text(re.compile("queued|running"))
        page.click("#cancel")
        expect(page.locator("#status")).to_have_text("cancelled", timeout=30_000)
        expect(page.locator("#timeline")).to_contain_text("cancelled by api:ops1 (ops)")

        page.goto(f"{base}/console/runs")
        expect(page.locator(f"tr[data-run='{other}'] .status")).to_have_text("cancelled")
        expect(page.locator(f"tr[data-run='{run_id}'] .status")).to_have_text("succeeded")
        expect(page.locator(".gauge[data-quota=segment_jobs] .used")).to_have_text("2")
    deadline = time.monotonic() + 10
    while api.get(f"{base}/v1/runs/{other}", timeout=5).json()["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.1)

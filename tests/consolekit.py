"""The console in a real browser: Debian's chromium driven by Playwright (never a browser Playwright downloads).

Used by the browser test (tests/integration/test_console_browser.py) and ``make screenshots``
(tests/screenshots.py). ``CHROMIUM`` may point elsewhere; ``.ci/run`` installs Debian's when it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]  # fmt: skip


def chromium_present() -> bool:
    return os.path.exists(CHROMIUM)


@contextmanager
def browser(**context_options: Any) -> Iterator[BrowserContext]:
    """A headless chromium with a fresh profile (deleted afterwards); ``context_options`` go to Playwright
    (e.g. ``http_credentials`` for Flower's basic auth)."""
    profile = tempfile.mkdtemp(prefix="aep-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1280, "height": 900},
                **context_options,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

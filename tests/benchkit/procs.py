"""Worker processes for the bench: start one with a stack's environment, wait for it, weigh it.

``Stack.start_worker`` always runs ``-A workers``; the baseline needs the same command line with
``-A tests.benchkit.noop_app`` and its own queue, so this module builds that command. Every process it
starts is appended to ``stack.workers``, so ``Stack.stop()`` stops it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from aep_activator.devstack.stack import REPO_ROOT, Stack

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def start_worker(
    stack: Stack,
    *,
    app: str = "aep_activator.workers",
    queue: str | None = None,
    concurrency: int = 2,
    name: str,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """``celery -A app worker`` on ``queue`` (default: the stack's), like ``Stack.start_worker``."""
    queue = queue or stack.queue
    environ = {**os.environ, **stack.env(), "AEP_QUEUE": queue, "PYTHONUNBUFFERED": "1", **(env or {})}
    log_path = stack.log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "-Q",
                queue,
                f"--hostname={name}-{stack.prefix.rstrip(':')}@%h",
                f"--concurrency={concurrency}",
                "--pool=prefork",
                "--loglevel=INFO",  # what `aep-activator worker` uses by default
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=REPO_ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.workers.append(proc)
    return proc, log_path


def wait_ready(proc: subprocess.Popen[bytes], log_path: Path, concurrency: int, timeout_s: float = 60) -> None:
    """Until the main process and its ``concurrency`` pool children exist and the consumer is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        # celery.apps.worker logs "<hostname> ready." (INFO) once the consumer is started.
        if " ready." in log_path.read_text(errors="replace") and len(children(proc.pid)) >= concurrency:
            return
        time.sleep(0.05)
    raise TimeoutError(f"worker not ready after {timeout_s}s: {log_path.read_text(errors='replace')[-2000:]}")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(x) for x in task.read_text().split()]
    return out


def rss_mb(pid: int) -> float:
    """Resident set size of one process, MiB (``/proc/<pid>/statm``, field 2, in pages)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE_KB / 1024


def tree_rss_mb(pid: int) -> tuple[float, list[float]]:
    """``(main RSS, [each pool child's RSS])`` in MiB."""
    return rss_mb(pid), [rss_mb(c) for c in children(pid)]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pss_mb(pid: int) -> float:
    """Proportional set size, MiB: shared pages (the prefork children share the parent's) counted once overall."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_pss_mb(pid: int) -> float:
    return pss_mb(pid) + sum(pss_mb(c) for c in children(pid))

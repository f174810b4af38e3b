"""``make demo``: one full activation against the embedded simulator, start to finish.

It finds or starts a Redis, starts the simulator at high speed, a real worker, Flower and the API server
(the run console, with a one-off ops key) on loopback,
enqueues ``examples/activation-request.json``, shows the steps live and prints the run's summary.
Everything runs under a key prefix and queue of its own, so a demo never spends or blocks the quota
of another demo, a test run or a real deployment sharing the same Redis. Then it stops what it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from aep_activator.aep.coordination.runs import RunRecord
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.config.settings import mask_url_password
from aep_activator.devstack.embedded_redis import provision
from aep_activator.devstack.stack import REPO_ROOT, Stack

console = Console(highlight=False)
EXAMPLE = REPO_ROOT / "examples" / "activation-request.json"
DONE_EVENTS = {"created", "adopted", "succeeded", "activated"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step_rows(run: RunRecord, steps: list[str]) -> list[tuple[str, str, str, str]]:
    """(step, state, duration, detail) for each step of the run, from its timeline."""
    rows = []
    now = time.time()
    for name in steps:
        events = [e for e in run.timeline if e.get("step") == name]
        started = next((e["t"] for e in events if e["event"] == "started"), None)
        finished = next((e for e in events if e["event"] in DONE_EVENTS), None)
        failed = next((e for e in events if e["event"] == "failed"), None)
        if finished and name.startswith("poll_") and finished["event"] != "succeeded":
            finished = None
        if failed:
            state, end, detail = "[red]failed[/red]", failed["t"], failed.get("detail", "")
        elif finished:
            state, end, detail = "[green]done[/green]", finished["t"], finished.get("detail", "")
        elif started:
            state, end = "[yellow]running[/yellow]", now
            detail = (run.waiting_reason or "") if run.step == name else ""
        else:
            state, end, detail = "[dim]pending[/dim]", None, ""
        duration = f"{end - started:5.1f}s" if started and end else ""
        rows.append((name, state, duration, detail))
    return rows


def progress_table(run: RunRecord, steps: list[str]) -> Table:
    table = Table(title=f"run {run.run_id} · {run.status}", title_justify="left")
    for col in ("step", "state", "took", "detail"):
        table.add_column(col)
    for row in step_rows(run, steps):
        table.add_row(*row)
    return table


def summary(run: RunRecord, rt: Any) -> Table:
    table = Table(title="summary", show_header=False, title_justify="left")
    table.add_row("status", run.status)
    table.add_row("segment job", run.segment_job_id or "-")
    table.add_row("export job", run.export_job_id or "-")
    for o in run.flow_runs:
        table.add_row("flow run", f"{o['run_id']} ({o['segment']} → {o['order']}: {o.get('status')})")
    table.add_row("total time", f"{run.updated_at - run.created_at:.1f}s (simulated AEP at high speed)")
    from aep_activator.tasks.producer import quota_usage

    for usage in quota_usage():
        period = "this contract year" if usage.name.endswith("_year") else "today"
        table.add_row(f"quota {usage.name}", f"{usage.remaining} of {usage.limit} left {period} (demo namespace)")
    if run.error:
        table.add_row("error", run.error)
    return table


def _start_flower(stack: Stack) -> tuple[subprocess.Popen[bytes] | None, str, str]:
    try:
        from aep_activator.workers.flower import start_flower_process
    except ImportError:
        return None, "", ""
    password = secrets.token_urlsafe(9)
    port = _free_port()
    creds = f"demo:{password}"
    env = {**stack.env(), "FLOWER_BASIC_AUTH": creds, "FLOWER_DB": str(stack.log_dir / "flower.db")}
    with open(stack.log_dir / "flower.log", "ab") as log:
        proc = start_flower_process(
            stack.settings(), address="127.0.0.1", port=port, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return proc, f"http://127.0.0.1:{port}", creds


def _cli_env(stack: Stack) -> str:
    """The variables that point the CLI at the demo's runs (its Redis, key prefix and queue), as a shell
    prefix; a Redis password is not printed: the line then names ``$REDIS_URL`` for the user to fill in."""
    url = stack.redis_url
    shown = "$REDIS_URL" if mask_url_password(url) != url else shlex.quote(url)
    return f"REDIS_URL={shown} AEP_KEY_PREFIX={shlex.quote(stack.prefix)} AEP_QUEUE={shlex.quote(stack.queue)}"


def _say(label: str, text: str) -> None:
    """One header line: never wrapped at the terminal's width (a URL, a password or a key is copied whole)."""
    console.print(f"[bold]{label:<10}[/bold] {text}", soft_wrap=True)


def run_demo(*, keep_running: bool = False, speed: float = 300.0, request_file: str | None = None) -> int:
    started = time.monotonic()
    request = json.loads(Path(request_file or EXAMPLE).read_text(encoding="utf-8"))
    req = ActivationRequest.model_validate(request)
    preferred = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    redis_server = provision(preferred, allow_fake=True)
    _say("redis", redis_server.describe())
    stack = Stack.start(redis_server.url, sim_config=SimulatorConfig(speed=speed, seed=42), prefix_root="aep-demo")
    flower: subprocess.Popen[bytes] | None = None
    try:
        _say("simulator", f"{stack.sim_url} (AEP at x{speed:g} speed, loopback only)")
        worker = stack.start_worker(concurrency=2, name="demo")
        flower, flower_url, creds = _start_flower(stack)
        if flower is not None:
            _say("flower", f"{flower_url}  (user:password {creds})")
        from aep_activator.workers.api.keys import new_key

        api_key, entry = new_key("demo", "ops")
        api_url = stack.start_api(_free_port(), env={"API_KEYS": entry})
        _say("console", f"{api_url}/console  (API key {api_key}, role ops; also /v1, /metrics)")
        stack.wait_worker_ready(worker, timeout_s=60)
        _say("worker", f"ready (logs in {stack.log_dir})")

        from aep_activator.tasks import runtime
        from aep_activator.tasks.celery import configure
        from aep_activator.tasks.producer import describe_admission, start, step_names

        configure(stack.settings())
        created = start(req.model_copy(update={"started_by": "demo"}))
        run_id = created.run_id
        steps = step_names(req)
        _say("run", f"{run_id}: {' → '.join(steps)}")
        if created.admission:
            _say("admission", describe_admission(created.admission))
        rt = runtime.runtime()
        run = rt.ledger.get(run_id)
        assert run is not None
        deadline = time.monotonic() + 120
        with Live(progress_table(run, steps), console=console, refresh_per_second=8) as live:
            while not run.terminal and time.monotonic() < deadline:
                time.sleep(0.1)
                run = rt.ledger.get(run_id) or run
                live.update(progress_table(run, steps))
        # Piped, Live's last frame ends without a newline: the summary would start on its bottom border.
        console.line()
        console.print(summary(run, rt))
        if not run.terminal:
            console.print("[red]the run did not finish within 120 s[/red]; worker log tail:")
            console.print(stack.worker_log()[-3000:], markup=False)
        if keep_running:
            command = f"{_cli_env(stack)} aep-activator status {run_id}"
            _say("other shell", escape(command))
            console.print("stack left running; press Ctrl-C to stop it")
            # A SIGTERM (a closed terminal, timeout, systemd) stops it too, through the same clean-up.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0 if run.status == "succeeded" else 1
    finally:
        if flower is not None:
            flower.terminate()
            try:
                flower.wait(10)
            except subprocess.TimeoutExpired:
                flower.kill()
        stack.stop()
        redis_server.stop()
        console.print(f"stopped everything in {time.monotonic() - started:.1f}s total")

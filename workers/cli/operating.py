"""Operating commands: ``worker``, ``beat``, ``flower``, ``schedules check|list``, ``api`` and ``api-key``
(``config check`` is in ``inspecting``).

Exit codes follow the CLI's: 2 for bad configuration or a bad schedule file, 3 for failed start-up
checks (Redis unreachable or unsafe), 0 otherwise. Each command imports Celery, the app, Flower and
the schedule model when it runs, not when the CLI loads.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from aep_activator.config.settings import Settings
from aep_activator.workers.cli.common import (
    console,
    err_console,
    fail,
    ping_redis,
    print_whole,
    service_says,
    settings_or_exit,
    use_settings,
)

if TYPE_CHECKING:
    from aep_activator.aep.pipeline.schedules import ScheduleFile


# --- worker ------------------------------------------------------------------------------------------


def run_self_checks(role: str, *, strict: bool = True) -> None:
    """Warn about, or refuse, configurations that break the quota or exactly-once guarantees."""
    from aep_activator.tasks.runtime import runtime
    from aep_activator.workers.checks import check_redis_policy, check_removed_settings, check_timeouts, check_utc

    s = settings_or_exit()
    use_settings(s)
    ping_redis()
    problems = check_timeouts(s) + check_redis_policy(runtime().redis) + check_utc() + check_removed_settings()
    for p in problems:
        refusing = p.fatal and strict
        level = "[red]refusing:[/red]" if refusing else "[yellow]warning:[/yellow]"
        service_says(s, f"{role} self-check {level} {escape(p.message)}",
                     level=logging.ERROR if refusing else logging.WARNING)  # fmt: skip
    if strict and any(p.fatal for p in problems):
        fail(f"{role} start-up checks failed (pass --no-strict-checks to start anyway)", code=3)
    from aep_activator.tasks.upgrade import LayoutTooNew, check_layout

    try:
        check_layout(runtime())
    except LayoutTooNew as exc:
        fail(str(exc), code=3)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default: cores).")
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--strict-checks/--no-strict-checks", default=True, show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, loglevel: str, strict_checks: bool, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker for the activation chain (after start-up self-checks).

    Extra arguments go to `celery worker` as they are, e.g. `-- --hostname w1@%h`.
    """
    s = settings_or_exit()
    if problems := s.aep_problems():
        fail("invalid configuration:\n  " + "\n  ".join(problems))
    run_self_checks("worker", strict=strict_checks)
    from aep_activator.workers import app

    argv = ["worker", f"--loglevel={loglevel}", "-Q", s.aep_queue]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main([*argv, *celery_args])


# --- flower ------------------------------------------------------------------------------------------


@click.command()
@click.option("--address", default=None, help="Bind address (default FLOWER_ADDRESS, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default FLOWER_PORT, 5555).")
@click.option("--insecure-no-auth", is_flag=True, help="Run WITHOUT basic auth (default: refuse to).")
def flower(address: str | None, port: int | None, insecure_no_auth: bool) -> None:
    """Run Flower on the broker, with basic auth from FLOWER_BASIC_AUTH (user:password)."""
    from aep_activator.workers.flower import FlowerAuthMissing, exec_flower, flower_warnings, port_problem, require_auth

    s = settings_or_exit()
    address = address or s.flower_address
    port = port or s.flower_port
    try:
        require_auth(s, {}, insecure_no_auth=insecure_no_auth)
    except FlowerAuthMissing as exc:
        fail(str(exc))
    if problem := port_problem(address, port):
        fail(problem)
    for warning in flower_warnings(address=address, port=port, insecure_no_auth=insecure_no_auth):
        style = "red" if insecure_no_auth else "yellow"
        err_console.print(Panel(warning, title="warning", border_style=style))
    exec_flower(s, address=address, port=port, env={}, insecure_no_auth=insecure_no_auth)


# --- beat --------------------------------------------------------------------------------------------


@click.command()
@click.option("--file", "path", default=None, help="Schedule file (default AEP_SCHEDULES_FILE).")
@click.option("--lock-timeout", type=float, default=90.0, show_default=True,
              help="Seconds before a dead beat's lock expires and a standby beat takes over.")
@click.option("--max-interval", type=float, default=15.0, show_default=True,
              help="Longest sleep between ticks, seconds; at most a third of --lock-timeout.")
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--strict-checks/--no-strict-checks", default=True, show_default=True)
def beat(
    path: str | None, lock_timeout: float, max_interval: float, loglevel: str, strict_checks: bool
) -> None:
    """Run celery beat (RedBeat: one active scheduler per Redis and key prefix) for the schedule file.

    A second beat waits on the lock and takes over within --lock-timeout after the first dies.
    """
    from aep_activator.workers import app
    from aep_activator.workers.beat import beat_config, run_beat

    s = settings_or_exit()
    parsed = _load_or_exit(path or s.aep_schedules_file)
    _print_warnings(parsed, s)
    try:
        config = beat_config(s, parsed, lock_timeout_s=lock_timeout, max_interval_s=max_interval)
    except ValueError as exc:
        fail(str(exc))
    run_self_checks("beat", strict=strict_checks)  # also points this process's app at `s`
    app.conf.update(config)
    total = len(parsed.schedule)
    service_says(s, f"beat: {len(parsed.enabled)} of {total} schedule{'' if total == 1 else 's'} enabled (cron in UTC)",
                 stderr=False)  # fmt: skip
    import time

    from aep_activator.tasks.runtime import runtime
    from aep_activator.workers.beat import lock_key, standby_notice

    # RedBeat blocks on its lock without a word; say why this beat waits (it takes over when the lock is free).
    if notice := standby_notice(s, int(runtime().redis.pttl(lock_key(s))), time.time()):
        service_says(s, escape(notice), stderr=False)
    run_beat(app, loglevel=loglevel, quiet=s.log_format == "json")


# --- schedules ---------------------------------------------------------------------------------------


@click.group()
def schedules() -> None:
    """Validate and inspect the schedule file (config/schedules.toml)."""


@schedules.command("check")
@click.option("--file", "path", default=None, help="Schedule file (default AEP_SCHEDULES_FILE).")
def schedules_check(path: str | None) -> None:
    """Validate the schedule file; warn when schedules alone overspend a daily quota. Exit 2 if invalid."""
    s = settings_or_exit()
    path = path or s.aep_schedules_file
    parsed = _load_or_exit(path)
    _print_warnings(parsed, s)
    total = len(parsed.schedule)
    counts = f"{total} schedule{'' if total == 1 else 's'}, {len(parsed.enabled)} enabled"
    console.print(f"[green]{schedule_path(path)}: OK[/green] ({counts})", soft_wrap=True)


@schedules.command("list")
@click.option("--file", "path", default=None, help="Schedule file (default AEP_SCHEDULES_FILE).")
@click.option("--count", "-n", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Fire times to show.")
def schedules_list(path: str | None, count: int) -> None:
    """List the schedules with their next fire times (UTC)."""
    from aep_activator.aep.pipeline.schedules import next_fire_times

    s = settings_or_exit()
    parsed = _load_or_exit(path or s.aep_schedules_file)
    now = dt.datetime.now(dt.UTC)
    table = Table(title=f"schedules (next {count} fire times, UTC)", title_justify="left")
    for col in ("name", "cron (UTC)", "enabled", "segment job", "next fire times (UTC)"):
        table.add_column(col, no_wrap=True)  # a name is copied whole: never wrapped mid-word
    for sch in parsed.schedule:
        times = "\n".join(f"{t:%Y-%m-%d %H:%M}" for t in next_fire_times(sch, count, now))
        yes_no = {True: "yes", False: "no"}
        table.add_row(sch.name, sch.cron, yes_no[sch.enabled], yes_no[sch.spends_segment_job],
                      times if sch.enabled else "never (disabled)")  # fmt: skip
    print_whole(table)
    _print_warnings(parsed, s)


def schedule_path(path: str) -> Path:
    """Where the schedule file is: ``path`` itself when absolute or found from the current directory, else
    ``path`` inside the installed package (``config/schedules.toml`` ships in it), so the default works from
    any directory."""
    import aep_activator

    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    packaged = Path(aep_activator.__file__).parent / given
    return packaged if packaged.exists() else given


def _load_or_exit(path: str) -> ScheduleFile[Any]:
    from aep_activator.aep.pipeline.schedules import ScheduleError
    from aep_activator.workers.beat import load_activation_schedules

    try:
        return load_activation_schedules(schedule_path(path))
    except ScheduleError as exc:
        fail(str(exc))


def _print_warnings(parsed: ScheduleFile[Any], s: Settings) -> None:
    from aep_activator.aep.pipeline.schedules import quota_warnings
    from aep_activator.tasks.runtime import quota_limits

    for warning in quota_warnings(parsed, quota_limits(s), now=dt.datetime.now(dt.UTC),
                                  default_sandbox=s.aep_sandbox_name):
        service_says(s, f"[yellow]warning:[/yellow] {escape(warning)}", level=logging.WARNING)


# --- api ---------------------------------------------------------------------------------------------


@click.command()
@click.option("--address", default=None, help="Bind address (default API_ADDRESS, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default API_PORT, 8000).")
@click.option("--insecure-no-auth", is_flag=True, help="Serve WITHOUT API keys: everyone is ops (default: refuse to).")
def api(address: str | None, port: int | None, insecure_no_auth: bool) -> None:
    """Serve the HTTP API, the run console (/console) and /metrics, with uvicorn.

    Keys come from API_KEYS (name:role:sha256hex, see `aep-activator api-key`); without any the server
    refuses to start unless --insecure-no-auth is given. /healthz is the only route open without a key.
    """
    s = settings_or_exit()
    address = address or s.api_address
    port = port or s.api_port
    from aep_activator.workers.api.keys import KeyRing

    keyring = None
    if s.api_keys is not None:
        try:
            keyring = KeyRing.parse(s.api_keys.get_secret_value())
        except ValueError as exc:
            fail(str(exc))
    elif not insecure_no_auth:
        fail("API_KEYS is not set: the API would be open to anyone who can reach it. Create a key with "
             "`aep-activator api-key NAME ops` and set API_KEYS, or pass --insecure-no-auth")  # fmt: skip
    if keyring is None:
        warning = f"the API on {address}:{port} runs WITHOUT AUTHENTICATION: anyone who can reach it can start, " \
            "cancel and resume runs"
        err_console.print(Panel(warning, title="INSECURE", border_style="red"))
    elif address not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/yellow] the API binds {address}: serve it behind TLS", soft_wrap=True)
    from aep_activator.workers.logs import configure_logging

    configure_logging(s.log_format)
    use_settings(s)
    ping_redis()
    import uvicorn

    from aep_activator.workers.api import create_app

    console.print(f"api: http://{address}:{port}/console (the console), /v1 (the API), /metrics, /docs")
    uvicorn.run(create_app(keyring), host=address, port=port, log_config=None, access_log=True,
                proxy_headers=False, server_header=False)  # fmt: skip


@click.command("api-key")
@click.argument("name")
@click.argument("role", type=click.Choice(["producer", "ops"]))
def api_key(name: str, role: str) -> None:
    """Print a new random API key and its API_KEYS entry (only the entry's hash is stored)."""
    from aep_activator.workers.api.keys import new_key

    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 64:
        fail("NAME: letters, digits, '-', '_' and '.' only, at most 64")
    key, entry = new_key(name, role)  # type: ignore[arg-type]
    # soft_wrap: a key or an entry is copied whole, never split across lines at the terminal's width.
    console.print(f"key (give it to the caller; it is not stored anywhere): {key}", soft_wrap=True)
    console.print(f"API_KEYS entry (add it, comma separated):            {entry}", soft_wrap=True)


COMMANDS = (worker, beat, flower, schedules, api, api_key)

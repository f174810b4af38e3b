"""``aep-activator``: the command line for producers and ops.

Bad input exits with status 2 and a message naming the field; nothing is enqueued.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aep_activator.config.settings import Settings, SettingsError, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", markup=True)
    sys.exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


def use_settings(s: Settings) -> None:
    """Point this process's app and runtime at ``s``."""
    from aep_activator.tasks.celery import configure

    configure(s)


def _ping_redis(s: Settings) -> None:
    from aep_activator.tasks.runtime import runtime

    try:
        runtime().redis.ping()
    except Exception as exc:
        fail(f"REDIS_URL: cannot reach Redis ({type(exc).__name__}: {exc})", code=3)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aep-activator")
def main() -> None:
    """Adobe Experience Platform ad-hoc activation on Celery + Redis.

    Runs the tutorial's chain: segment job → poll → export job → poll → ad-hoc activation → poll,
    exactly once per step, within AEP's daily quotas.
    """


# --- config -----------------------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.option("--aep/--no-aep", "need_aep", default=True, help="Also require the AEP credentials.")
def config_check(need_aep: bool) -> None:
    """Validate the environment and print the settings, secrets masked."""
    s = settings_or_exit()
    table = Table(title="aep-activator settings", show_header=True)
    table.add_column("variable")
    table.add_column("value")
    for name, value in s.masked().items():
        table.add_row(name, str(value))
    console.print(table)
    if need_aep and (problems := s.aep_problems()):
        fail("invalid configuration:\n  " + "\n  ".join(problems))
    console.print("[green]configuration OK[/green]")


# --- producing ----------------------------------------------------------------------------------------


def _load_request(path: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    if path:
        text = sys.stdin.read() if path == "-" else _read(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            fail(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        if not isinstance(data, dict):
            fail(f"{path}: the request must be a JSON object")
    else:
        data = {}
    if flags["destination"]:
        info: dict[str, list[str]] = {}
        for item in flags["destination"]:
            dest, sep, auds = item.partition("=")
            if not sep or not dest or not auds:
                fail(f"--destination {item!r}: expected DATAFLOW_ID=AUDIENCE[,AUDIENCE…]")
            info.setdefault(dest, []).extend(a for a in auds.split(",") if a)
        data["activation_info"] = info
    for key in ("version", "on_quota", "idempotency_key"):
        if flags[key] is not None:
            data[key] = flags[key]
    if flags["no_segment_job"]:
        data["segment_job"] = False
    if flags["dataset"]:
        data["export_job"] = {
            "destination": {"datasetId": flags["dataset"]},
            "schema": {"name": "_xdm.context.profile"},
        }
    data.setdefault("started_by", "cli")
    return data


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")


@main.command()
@click.argument("request_file", required=False)
@click.option("--destination", "-d", multiple=True, help="DATAFLOW_ID=AUDIENCE[,AUDIENCE…] (repeatable).")
@click.option("--dataset", help="Export to this dataset id (schema _xdm.context.profile); v1 only.")
@click.option("--version", type=click.Choice(["1", "2"]), callback=lambda c, p, v: int(v) if v else None)
@click.option("--no-segment-job", is_flag=True, help="Skip on-demand evaluation; activate the latest results.")
@click.option("--on-quota", type=click.Choice(["wait", "fail"]))
@click.option("--idempotency-key")
@click.option("--json", "as_json", is_flag=True, help='Print {"run_id": …} only.')
def run(request_file: str | None, as_json: bool, **flags: Any) -> None:
    """Start an activation from REQUEST_FILE (JSON; '-' for stdin) and/or flags. Prints the run id."""
    from aep_activator.aep.api.errors import QuotaExhausted
    from aep_activator.tasks.producer import InvalidRequest, start_activation

    if not request_file and not flags["destination"]:
        fail("give a REQUEST_FILE or at least one --destination")
    data = _load_request(request_file, flags)
    s = settings_or_exit()
    use_settings(s)
    try:
        from aep_activator.tasks.producer import parse_request

        req = parse_request(data)
    except InvalidRequest as exc:
        fail(str(exc))
    _ping_redis(s)
    try:
        run_id = start_activation(req)
    except QuotaExhausted as exc:
        fail(f"{exc.message} (on_quota=fail)", code=4)
    if as_json:
        click.echo(json.dumps({"run_id": run_id}))
    else:
        from aep_activator.tasks.producer import step_names

        console.print(f"run [bold]{run_id}[/bold] queued ({' → '.join(step_names(req))})")
        console.print(f"follow it with: aep-activator status --watch {run_id}")


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_run(record: Any) -> Table:
    table = Table(title=f"run {record.run_id} · {record.status.upper()} · step {record.step}", title_justify="left")
    table.add_column("time (UTC)")
    table.add_column("step")
    table.add_column("event")
    table.add_column("detail", overflow="fold")
    for ev in record.timeline[-30:]:
        table.add_row(_when(ev.get("t")), ev.get("step", ""), ev.get("event", ""), ev.get("detail", ""))
    ids = []
    if record.segment_job_id:
        ids.append(f"segment job {record.segment_job_id}")
    if record.export_job_id:
        ids.append(f"export job {record.export_job_id}")
    for o in record.flow_runs:
        ids.append(f"flow run {o['run_id']} ({o['segment']}→{o['order']}: {o.get('status')})")
    if ids:
        table.caption = "; ".join(ids)
    if record.status == "waiting" and record.waiting_reason:
        table.caption = (table.caption or "") + f"\nwaiting: {record.waiting_reason} (until {_when(record.wait_until)})"
    if record.error:
        table.caption = (table.caption or "") + f"\nerror: {record.error}"
    return table


@main.command()
@click.argument("run_id")
@click.option("--watch", is_flag=True, help="Refresh until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes with --watch.")
def status(run_id: str, watch: bool, as_json: bool, interval: float) -> None:
    """Show a run's step timeline (status: queued, running, waiting, succeeded, failed, cancelled)."""
    from aep_activator.tasks.producer import get_run, run_summary

    use_settings(settings_or_exit())
    record = get_run(run_id)
    if record is None:
        fail(f"no run {run_id!r}", code=1)
    if as_json:
        click.echo(json.dumps(run_summary(record), indent=2))
        return
    if not watch:
        console.print(render_run(record))
        return
    with Live(render_run(record), console=console, refresh_per_second=4) as live:
        while not record.terminal:
            time.sleep(interval)  # the CLI process, not a worker
            record = get_run(run_id) or record
            live.update(render_run(record))
    sys.exit(0 if record.status == "succeeded" else 1)


@main.command()
@click.argument("run_id")
def cancel(run_id: str) -> None:
    """Cancel a run: revoke its pending steps and DELETE its in-flight AEP job."""
    from aep_activator.tasks.producer import cancel_run

    use_settings(settings_or_exit())
    try:
        record = cancel_run(run_id)
    except KeyError:
        fail(f"no run {run_id!r}", code=1)
    console.print(f"run {run_id} is {record.status}")


@main.command()
@click.argument("run_id")
def resume(run_id: str) -> None:
    """Restart a failed run from the step that failed, reusing the AEP ids it already has."""
    from aep_activator.tasks.producer import resume_run

    use_settings(settings_or_exit())
    try:
        record = resume_run(run_id)
    except KeyError:
        fail(f"no run {run_id!r}", code=1)
    except ValueError as exc:
        fail(str(exc), code=1)
    console.print(f"run {run_id} resumed at {record.step}")


@main.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def runs(limit: int, as_json: bool) -> None:
    """List recent runs, newest first."""
    from aep_activator.tasks.runtime import runtime

    use_settings(settings_or_exit())
    records = runtime().ledger.recent(limit)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "run_id": r.run_id,
                        "status": r.status,
                        "step": r.step,
                        "created_at": r.created_at,
                        "started_by": r.started_by,
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return
    table = Table()
    for col in ("run id", "created (UTC)", "status", "step", "started by"):
        table.add_column(col)
    for r in records:
        table.add_row(r.run_id, _when(r.created_at), r.status, r.step, r.started_by)
    console.print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True)
def quota(as_json: bool) -> None:
    """Show each quota: used (committed), reserved, limit and when it resets."""
    from aep_activator.tasks.producer import quota_usage

    s = settings_or_exit()
    use_settings(s)
    _ping_redis(s)
    rows = quota_usage()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "quota": u.name,
                        "scope": u.scope,
                        "used": u.used,
                        "reserved": u.pending,
                        "limit": u.limit,
                        "remaining": u.remaining,
                        "reset_at": u.reset_at,
                    }
                    for u in rows
                ]
            )
        )
        return
    table = Table(title="quotas (UTC windows)")
    for col in ("quota", "scope", "used", "reserved", "limit", "remaining", "resets at (UTC)"):
        table.add_column(col)
    for u in rows:
        table.add_row(
            u.name, u.scope or "-", str(u.used), str(u.pending), str(u.limit), str(u.remaining), _when(u.reset_at)
        )
    console.print(table)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--speed", default=1.0, show_default=True, type=float, help="Simulated time runs N times faster.")
@click.option("--fault-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Share of 5xx/429.")
@click.option("--seed", type=int, default=None)
@click.option("--fixture", type=click.Path(exists=True, dir_okay=False), default=None)
def simulator(host: str, port: int, speed: float, fault_rate: float, seed: int | None, fixture: str | None) -> None:
    """Run the offline AEP simulator (IMS, segment/export jobs, ad-hoc runs, flow runs)."""
    from aep_activator.aepsim import run_simulator_cli

    if speed <= 0:
        fail("--speed must be > 0")
    run_simulator_cli(host=host, port=port, speed=speed, fault_rate=fault_rate, seed=seed, fixture=fixture)


def _register_extra_commands() -> None:
    # Operations commands (worker, beat, flower, schedules, demo) live in their own modules.
    from aep_activator.workers.cli import commands

    commands.register(main)


_register_extra_commands()

"""Producing commands: ``run``, ``status``, ``runs``, ``cancel``, ``resume`` and ``quota``.

Bad input exits with status 2 and a message naming the field; nothing is enqueued. Each command
imports the producer API and the runtime when it runs, not when the CLI loads.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.live import Live
from rich.table import Table

from aep_activator.workers.cli.common import (
    console,
    err_console,
    fail,
    ping_redis,
    settings_or_exit,
    use_settings,
    when,
)


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
    for key in ("version", "on_quota", "idempotency_key", "sandbox"):
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


@click.command()
@click.argument("request_file", required=False)
@click.option("--destination", "-d", multiple=True, help="DATAFLOW_ID=AUDIENCE[,AUDIENCE…] (repeatable).")
@click.option("--dataset", help="Export to this dataset id (schema _xdm.context.profile); v1 only.")
@click.option("--version", type=click.Choice(["1", "2"]), callback=lambda c, p, v: int(v) if v else None)
@click.option("--no-segment-job", is_flag=True, help="Skip on-demand evaluation; activate the latest results.")
@click.option("--on-quota", type=click.Choice(["wait", "fail"]))
@click.option("--idempotency-key")
@click.option("--sandbox", help="AEP sandbox (x-sandbox-name); default AEP_SANDBOX_NAME.")
@click.option("--json", "as_json", is_flag=True, help='Print {"run_id": …} only.')
def run(request_file: str | None, as_json: bool, **flags: Any) -> None:
    """Start an activation from REQUEST_FILE (JSON; '-' for stdin) and/or flags. Prints the run id."""
    from aep_activator.aep.api.errors import QuotaExhausted
    from aep_activator.tasks.producer import InvalidRequest, describe_admission, parse_request, start

    if not request_file and not flags["destination"]:
        fail("give a REQUEST_FILE or at least one --destination")
    data = _load_request(request_file, flags)
    s = settings_or_exit()
    use_settings(s)
    try:
        req = parse_request(data)
    except InvalidRequest as exc:
        fail(str(exc))
    ping_redis()
    try:
        created = start(req)
    except InvalidRequest as exc:
        fail(str(exc))
    except QuotaExhausted as exc:
        fail(f"{exc.message} (on_quota=fail)", code=4)
    run_id = created.run_id
    if as_json:
        admission = created.admission.to_dict() if created.admission else None
        click.echo(json.dumps({"run_id": run_id, "verdict": created.verdict, "admission": admission}))
    else:
        from aep_activator.tasks.producer import step_names

        console.print(f"run [bold]{run_id}[/bold] {created.verdict} ({' → '.join(step_names(req))})")
        if created.admission:
            console.print(f"quota: {describe_admission(created.admission)}")
        console.print(f"follow it with: aep-activator status --watch {run_id}")


def render_run(record: Any) -> Table:
    table = Table(title=f"run {record.run_id} · {record.status.upper()} · step {record.step}", title_justify="left")
    table.add_column("time (UTC)")
    table.add_column("step")
    table.add_column("event")
    table.add_column("detail", overflow="fold")
    for ev in record.timeline[-30:]:
        table.add_row(when(ev.get("t")), ev.get("step", ""), ev.get("event", ""), ev.get("detail", ""))
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
        table.caption = (table.caption or "") + f"\nwaiting: {record.waiting_reason} (until {when(record.wait_until)})"
    if record.error:
        table.caption = (table.caption or "") + f"\nerror: {record.error}"
    return table


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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
        table.add_row(r.run_id, when(r.created_at), r.status, r.step, r.started_by)
    console.print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True)
def quota(as_json: bool) -> None:
    """Show each quota per sandbox: used, pending (POST outcome not yet known), limit and when it resets."""
    from aep_activator.tasks.producer import quota_usage
    from aep_activator.tasks.reconcile import last_report
    from aep_activator.tasks.runtime import runtime

    s = settings_or_exit()
    use_settings(s)
    ping_redis()
    try:
        rows = quota_usage()
    except ValueError as exc:
        fail(str(exc))
    report = last_report(runtime())
    if as_json:
        keys = ("quota", "scope", "used", "pending", "limit", "remaining", "reset_at")
        click.echo(json.dumps([dict(zip(keys, (u.name, u.scope, u.used, u.pending, u.limit, u.remaining, u.reset_at),
                                            strict=True)) for u in rows]))  # fmt: skip
        return
    org = s.aep_org_id or ""
    table = Table(title=f"quotas of {org} (times UTC)", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)  # fmt: skip
    for col in ("quota", "sandbox", "used", "pending", "limit", "left", "resets at"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("used", "pending", "limit", "left") else "left")
    for u in rows:
        sandbox = u.scope.removeprefix(org + "/") if u.scope != org else "(org)"
        table.add_row(u.name, sandbox, str(u.used), str(u.pending), str(u.limit), str(u.remaining),
                      when(u.reset_at)[:16])  # fmt: skip
    console.print(table)
    for u in rows:
        if u.name.endswith("_year") and u.limit and u.used >= 0.8 * u.limit:
            err_console.print(f"[yellow]warning:[/yellow] {u.scope}: {u.used} of {u.limit} on-demand segment jobs "
                              f"this contract year ({100 * u.used // u.limit} %)")  # fmt: skip
    if report:
        for name, sb in report["sandboxes"].items():
            if sb.get("error"):
                console.print(f"reconcile ({when(report['at'])}): sandbox {name}: {sb['error']}")
            else:
                console.print(f"reconcile ({when(report['at'])}): sandbox {name}: AEP counts {sb['counted_today']} "
                              f"segment jobs today, {sb['external_today']} not sent by this system "
                              f"({sb['counted_year']} this year, {sb['external_year']} external)")  # fmt: skip


@click.command()
@click.option("--json", "as_json", is_flag=True)
def reconcile(as_json: bool) -> None:
    """Count in the quota ledger the segment jobs AEP counts that this system did not send. Never POSTs."""
    from aep_activator.tasks.reconcile import reconcile as run_reconcile
    from aep_activator.tasks.runtime import runtime

    s = settings_or_exit()
    use_settings(s)
    ping_redis()
    report = run_reconcile(runtime())
    if as_json:
        click.echo(report.to_json())
        return
    for name, sb in report.sandboxes.items():
        console.print(f"sandbox {name}: AEP counts {sb.counted_today} today ({sb.counted_year} this year); "
                      f"{sb.external_today} not sent by this system, {sb.newly_recorded} newly recorded; "
                      f"{sb.unclassified} unclassified" + (f"; error: {sb.error}" if sb.error else ""))  # fmt: skip
    console.print(f"flow runs today on our dataflows by other clients (unclassified): {report.flow_runs_unclassified}")
    if report.orphaned_flow_runs:
        console.print(f"[yellow]orphaned[/yellow] flow runs of our client with no run record: "
                      f"{', '.join(report.orphaned_flow_runs)}")  # fmt: skip


COMMANDS = (run, status, runs, cancel, resume, quota, reconcile)

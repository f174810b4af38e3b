"""Producing commands: ``run``, ``cancel``, ``resume``, ``quota`` and ``reconcile`` (``status`` and ``runs``
are in ``watching``).

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
from rich.table import Table

from aep_activator.workers.cli.common import (
    console,
    err_console,
    fail,
    ping_redis,
    print_whole,
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
@click.option("--json", "as_json", is_flag=True, help='Print {"run_id", "verdict", "admission"} as JSON.')
def run(request_file: str | None, as_json: bool, **flags: Any) -> None:
    """Start an activation from REQUEST_FILE (JSON; '-' for stdin) and/or flags. Prints the run id."""
    from aep_activator.aep.api.errors import QuotaExhausted
    from aep_activator.config.settings import SettingsError
    from aep_activator.tasks.producer import InvalidRequest, describe_admission, get_run, parse_request, start

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
    except (InvalidRequest, SettingsError) as exc:
        fail(str(exc))
    except QuotaExhausted as exc:
        fail(f"{exc.message}; {_resets(exc.reset_at)}", code=4)
    run_id = created.run_id
    if as_json:
        admission = created.admission.to_dict() if created.admission else None
        click.echo(json.dumps({"run_id": run_id, "verdict": created.verdict, "admission": admission}))
        return
    if not sys.stdout.isatty():
        # RUN=$(aep-activator run f.json): the id alone on stdout; the story goes to stderr.
        click.echo(run_id)
    out = console if sys.stdout.isatty() else err_console
    from aep_activator.tasks.producer import step_names

    if created.verdict == "existing":
        record = get_run(run_id)
        state = f"{record.status} at {record.step}" if record else "unknown"
        out.print(f"run [bold]{run_id}[/bold] already exists for this idempotency key: {state}; nothing started",
                  soft_wrap=True)  # fmt: skip
        if record is not None and record.status == "failed":
            out.print(f"to restart it from the step that failed: aep-activator resume {run_id}", soft_wrap=True)
    else:
        out.print(f"run [bold]{run_id}[/bold] {created.verdict}: {' → '.join(step_names(req))}")
    if created.admission:
        out.print(f"quota: {describe_admission(created.admission)}")
    out.print(f"follow it with: aep-activator status --watch {run_id}", soft_wrap=True)


def _resets(reset_at: float) -> str:
    """``resets at 2026-12-02 00:00 UTC (in 11 h 24 min)``, or nothing known."""
    if not reset_at:
        return "its reset time is unknown"
    left = max(0.0, reset_at - time.time())
    return f"resets at {when(reset_at)[:16]} UTC (in {int(left // 3600)} h {int(left % 3600 // 60)} min)"


@click.command()
@click.argument("run_id")
def cancel(run_id: str) -> None:
    """Cancel a run: revoke its pending steps and DELETE its in-flight AEP job."""
    from aep_activator.tasks.producer import cancel_run

    use_settings(settings_or_exit())
    ping_redis()
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
    ping_redis()
    try:
        record = resume_run(run_id)
    except KeyError:
        fail(f"no run {run_id!r}", code=1)
    except ValueError as exc:
        fail(str(exc), code=1)
    console.print(f"run {run_id} resumed at {record.step}")


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
    print_whole(table)
    for u in rows:
        if u.name.endswith("_year") and u.limit and u.used >= 0.8 * u.limit:
            err_console.print(f"[yellow]warning:[/yellow] {u.scope}: {u.used} of {u.limit} on-demand segment jobs "
                              f"this contract year ({100 * u.used // u.limit} %)", soft_wrap=True)  # fmt: skip
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
                      f"{sb.unclassified} unclassified"
                      + (f"; {sb.settling} too new to count yet (the next pass counts them)" if sb.settling else "")
                      + (f"; error: {sb.error}" if sb.error else ""))  # fmt: skip
    console.print(f"flow runs today on our dataflows by other clients (unclassified): {report.flow_runs_unclassified}")
    if report.orphaned_flow_runs:
        console.print(f"[yellow]orphaned[/yellow] flow runs of our client with no run record: "
                      f"{', '.join(report.orphaned_flow_runs)}")  # fmt: skip


COMMANDS = (run, cancel, resume, quota, reconcile)

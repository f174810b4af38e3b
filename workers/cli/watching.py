"""Watching commands: ``status`` (one run's timeline, live with ``--watch``) and ``runs`` (recent runs).

``status`` exits with the run's state (:data:`EXIT_BY_STATUS`), so a script can branch on it without
parsing. Each command imports the producer API and the runtime when it runs, not when the CLI loads.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from aep_activator.workers.cli.common import (
    console,
    fail,
    ping_redis,
    print_whole,
    settings_or_exit,
    use_settings,
    when,
)

# `status` exits with the run's state, so a script can branch on it without parsing (the README's table).
EXIT_BY_STATUS = {"succeeded": 0, "failed": 5, "cancelled": 6}
EXIT_OPEN = 7  # queued, running or waiting
EXIT_NO_RUN = 1


def current_wait(record: Any) -> str | None:
    """What the open run's current step waits on, and until when: an AEP poll as much as a quota or an audience."""
    if record.terminal or not record.waiting_reason:
        return None
    until = f" (next check {when(record.wait_until)} UTC)" if record.wait_until else ""
    return f"{record.waiting_reason}{until}"


def render_run(record: Any, *, max_rows: int = 30, live: bool = False) -> Group:
    """The run's headline and current wait (above the table, always visible), then its newest ``max_rows`` events.

    ``live`` (``status --watch``): one line per event, details cut to the width, so the rows fit the screen.
    """
    head = [Text(f"run {record.run_id} · {record.status.upper()} · step {record.step}", style="bold")]
    if wait := current_wait(record):
        head.append(Text(f"waiting: {wait}"))
    table = Table()
    events = record.timeline
    older = len(events) - max_rows + 1 if len(events) > max_rows else 0
    if older:
        events = events[-(max_rows - 1):]
    # Live, the time is HH:MM:SS and the step and event get their full width: only the detail is cut.
    rows = [(when(ev.get("t"))[11:] if live else when(ev.get("t")), ev.get("step", ""), ev.get("event", ""),
             ev.get("detail", "")) for ev in events]  # fmt: skip
    widths = [max([len(r[i]) for r in rows] + [len(name)]) for i, name in enumerate(("time (UTC)", "step", "event"))]
    for width, name in zip(widths, ("time (UTC)", "step", "event"), strict=True):
        table.add_column(name, no_wrap=True, min_width=width)
    # 13: the five borders and the padding of four columns.
    detail_width = max(10, console.width - sum(widths) - 13) if live else None
    table.add_column("detail", overflow="ellipsis" if live else "fold", no_wrap=live, max_width=detail_width)
    if older:
        table.add_row("", "", "…", f"{older} older events (status --json shows all)")
    for row in rows:
        table.add_row(*row)
    ids = []
    if record.segment_job_id:
        ids.append(f"segment job {record.segment_job_id}")
    if record.export_job_id:
        ids.append(f"export job {record.export_job_id}")
    for o in record.flow_runs:
        ids.append(f"flow run {o['run_id']} ({o['segment']}→{o['order']}: {o.get('status')})")
    if ids:
        table.caption = "; ".join(ids)
    if record.error:
        table.caption = (table.caption or "") + f"\nerror: {record.error}"
    return Group(*head, table)


def status_exit_code(record: Any) -> int:
    return EXIT_BY_STATUS.get(str(record.status), EXIT_OPEN)


def _watch_rows() -> int:
    """Timeline rows that fit the terminal with the headline and wait (3 lines), the header and borders (4) and
    the caption (3)."""
    return max(3, console.size.height - 10)


@click.command()
@click.argument("run_id")
@click.option("--watch", is_flag=True, help="Refresh until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes with --watch.")
def status(run_id: str, watch: bool, as_json: bool, interval: float) -> None:
    """Show a run's step timeline (status: queued, running, waiting, succeeded, failed, cancelled).

    Exits with the run's state: 0 succeeded, 5 failed, 6 cancelled, 7 still open, 1 no such run.
    """
    from aep_activator.tasks.producer import get_run, run_summary

    use_settings(settings_or_exit())
    ping_redis()
    record = get_run(run_id)
    if record is None:
        fail(f"no run {run_id!r}", code=EXIT_NO_RUN)
    if as_json:
        click.echo(json.dumps(run_summary(record), indent=2))
    elif not watch:
        console.print(render_run(record))
    elif not console.is_terminal:
        # Piped or redirected: no live redraws (rich would print only the last frame, without a final
        # newline); wait for the end, then print the timeline once.
        while not record.terminal:
            time.sleep(interval)  # the CLI process, not a worker
            record = get_run(run_id) or record
        console.print(render_run(record))
    else:
        with Live(render_run(record, max_rows=_watch_rows(), live=True), console=console, refresh_per_second=4) as view:
            while not record.terminal:
                time.sleep(interval)  # the CLI process, not a worker
                record = get_run(run_id) or record
                view.update(render_run(record, max_rows=_watch_rows(), live=True))
    sys.exit(status_exit_code(record))


@click.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def runs(limit: int, as_json: bool) -> None:
    """List recent runs, newest first."""
    from aep_activator.tasks.runtime import runtime

    use_settings(settings_or_exit())
    ping_redis()
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
        table.add_column(col, no_wrap=True)
    for r in records:
        table.add_row(r.run_id, when(r.created_at), r.status, r.step, r.started_by)
    print_whole(table)


COMMANDS = (status, runs)

"""What every command module of the CLI shares: the consoles, exiting with a message, the settings.

Exit codes (the README's): 2 bad input or configuration, 3 Redis unreachable or failed start-up
checks, 4 quota used up with ``--on-quota fail``, 1 a run that does not exist or cannot be resumed.
Nothing here reads the settings at import: ``aep-activator --help`` works in any environment.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import NoReturn

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from aep_activator.config.settings import Settings, SettingsError, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``.

    The message is never wrapped to the terminal's width (``soft_wrap``): a one-line error stays one line
    in a log or a pipe, whatever the width. A message listing problems on indented lines (the settings'
    and the request's ``header:\n  field: problem``) is joined into that one line with ``; ``.
    """
    head, *items = message.split("\n")
    if items:
        message = head + " " + "; ".join(i.strip() for i in items if i.strip())
    err_console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    sys.exit(code)


def service_says(s: Settings, markup: str, *, level: int = logging.INFO, stderr: bool = True) -> None:
    """What a service (worker, beat) says at start-up: rich text, or with LOG_FORMAT=json one JSON line
    (the markup's plain text) on stderr, like every line it logs after."""
    if s.log_format == "json":
        from aep_activator.workers.logs import json_notice

        json_notice(Text.from_markup(markup).plain, level)
    else:
        (err_console if stderr else console).print(markup, soft_wrap=True)


def settings_or_exit() -> Settings:
    """The settings from the environment, or exit 2 naming every bad variable."""
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


def use_settings(s: Settings) -> None:
    """Point this process's app and runtime at ``s``."""
    from aep_activator.tasks.celery import configure

    configure(s)


def ping_redis() -> None:
    """Exit unless the configured Redis answers (after :func:`use_settings`), in one line naming ``REDIS_URL``.

    Exit 2 for a URL that cannot be parsed (a non-numeric port), 3 for a Redis that cannot be reached or
    refuses the URL's database (``…/99``: ``DB index is out of range``).
    """
    from aep_activator.tasks.runtime import runtime

    try:
        runtime().redis.ping()
    except ValueError as exc:
        fail(f"REDIS_URL: not a valid Redis URL ({exc})")
    except Exception as exc:
        fail(redis_unreachable(exc), code=3)


def redis_unreachable(exc: BaseException) -> str:
    """The one line that says Redis could not be used, naming ``REDIS_URL`` (never its password)."""
    return f"REDIS_URL: cannot reach Redis ({type(exc).__name__}: {exc})"


def print_whole(table: Table) -> None:
    """Print ``table`` with nothing truncated: ids and names are what one copies.

    Rich fits a table to the terminal by cutting cells (``1bf87f6f74…``). When it does not fit, it is
    printed at its natural width instead, and the terminal wraps the long lines.
    """
    natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
    if natural <= console.width:
        console.print(table)
    else:
        Console(highlight=False, width=natural, file=console.file, no_color=console.no_color).print(table)


def when(ts: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` for none."""
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

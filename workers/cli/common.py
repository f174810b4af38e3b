"""What every command module of the CLI shares: the consoles, exiting with a message, the settings.

Exit codes (the README's): 2 bad input or configuration, 3 Redis unreachable or failed start-up
checks, 4 quota used up with ``--on-quota fail``, 1 a run that does not exist or cannot be resumed.
Nothing here reads the settings at import: ``aep-activator --help`` works in any environment.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import NoReturn

from rich.console import Console

from aep_activator.config.settings import Settings, SettingsError, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {message}", markup=True)
    sys.exit(code)


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
    """Exit 3 naming ``REDIS_URL`` unless the configured Redis answers (after :func:`use_settings`)."""
    from aep_activator.tasks.runtime import runtime

    try:
        runtime().redis.ping()
    except Exception as exc:
        fail(f"REDIS_URL: cannot reach Redis ({type(exc).__name__}: {exc})", code=3)


def when(ts: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` for none."""
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

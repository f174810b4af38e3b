"""``aep-activator --help``, and ``--help`` of every command, work in an environment whose settings are invalid.

Run as a user runs it: the real interpreter on ``python -m aep_activator.workers`` (and the installed
``aep-activator`` script), in a fresh process, with a nonsense ``REDIS_URL``, an empty ``AEP_ORG_ID``
and a negative ``VISIBILITY_TIMEOUT_S``. Help must not need Redis, credentials or valid settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from aep_activator.config.settings import SettingsError, load_settings
from aep_activator.workers.cli import main

INVALID_ENV = {"REDIS_URL": "nonsense", "AEP_ORG_ID": "", "VISIBILITY_TIMEOUT_S": "-1"}
MODULE = [sys.executable, "-m", "aep_activator.workers"]
SCRIPT = [str(Path(sys.executable).parent / "aep-activator")]


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and sub-command of ``group``, as the words a user types."""
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


def help_of(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **INVALID_ENV, "COLUMNS": "100"}
    return subprocess.run([*argv, "--help"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_environment_used_here_is_really_invalid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    for name, value in INVALID_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "REDIS_URL" in str(caught.value) and "VISIBILITY_TIMEOUT_S" in str(caught.value)


@pytest.mark.parametrize("argv", [MODULE, SCRIPT], ids=["python -m aep_activator.workers", "aep-activator"])
def test_top_level_help_exits_0_with_the_usage_and_every_command(argv: list[str], tmp_path: Path) -> None:
    out = help_of(argv, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: ") and "[OPTIONS] COMMAND [ARGS]..." in out.stdout
    listed = {line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(main.commands)
    assert out.stderr == ""


PATHS = list(command_paths(main))


def test_the_help_checks_below_cover_every_command_and_sub_command() -> None:
    assert {"run", "status", "worker", "beat", "demo"} <= {p[0] for p in PATHS}
    assert ("schedules", "check") in PATHS and ("schedules", "list") in PATHS and ("config", "check") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_each_command_help_exits_0_with_its_usage_line(path: tuple[str, ...], tmp_path: Path) -> None:
    out = help_of([*MODULE, *path], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Usage: python -m aep_activator.workers {' '.join(path)} [OPTIONS]"), out.stdout
    command = main
    for word in path:
        assert isinstance(command, click.Group)
        command = command.commands[word]
    assert " ".join(command.get_short_help_str(limit=200).split()[:4]) in " ".join(out.stdout.split())
    assert out.stderr == ""

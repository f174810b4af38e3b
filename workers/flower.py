"""Flower, the Celery monitor, on the same broker, with basic auth on by default.

Contracts:

- The child's environment is built from the validated ``settings`` (every non-secret setting, so
  ``celery -A workers`` in the child configures the same broker), plus ``env`` on top. AEP secrets
  never reach Flower: it does not call AEP.
- Basic auth (``user:password``) reaches Flower through that environment as ``FLOWER_BASIC_AUTH``
  (Flower applies ``FLOWER_<OPTION>`` variables itself, see ``flower/command.py: apply_env_options``),
  never its argv, so the password is not visible in ``ps``. The broker URL (it may carry a Redis
  password) travels the same way, as ``REDIS_URL``.
- Credentials and the state file come from ``env`` when it sets ``FLOWER_BASIC_AUTH`` / ``FLOWER_DB``
  (the demo passes them so), else from ``settings``.
- Without credentials Flower does not start unless the caller opts in (``insecure_no_auth``), and
  then any inherited ``FLOWER_BASIC_AUTH`` is removed: the flag means "no auth".
- Flower's ``/metrics`` is unauthenticated upstream (mher/flower#1342), so a bind address other than
  loopback is reported as exposing it (:func:`flower_warnings`).
- State persists (``--persistent=True --db=…``, its directory created) and the number of tasks
  Flower keeps in memory is bounded by :data:`MAX_TASKS`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr

from aep_activator.config.settings import Settings

MAX_TASKS = 10_000
# The tasks page's columns: the arguments (the run id, the carrier number) to search by, and the
# exception, which for a waiting step (RETRY) says in words what it waits on.
TASKS_COLUMNS = "name,uuid,state,args,exception,received,started,runtime,worker"
# Flower saves its state on exit; also every minute, so a kill -9 loses at most a minute of history.
STATE_SAVE_INTERVAL_MS = 60_000
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
AUTH_VAR = "FLOWER_BASIC_AUTH"
DB_VAR = "FLOWER_DB"


class FlowerAuthMissing(RuntimeError):
    """No basic-auth credentials, and the caller did not opt into running Flower without auth."""


def credentials(settings: Settings, env: Mapping[str, str]) -> str | None:
    """``user:password`` from ``env`` or else ``settings``; ``None`` when neither has it."""
    secret = settings.flower_basic_auth
    value = env.get(AUTH_VAR) or (secret.get_secret_value() if secret else "")
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise FlowerAuthMissing(f"{AUTH_VAR} must look like user:password")
    return value


def require_auth(settings: Settings, env: Mapping[str, str], *, insecure_no_auth: bool) -> None:
    """Raise :class:`FlowerAuthMissing` unless there are credentials or the caller opted out of auth."""
    if not insecure_no_auth and credentials(settings, env) is None:
        raise FlowerAuthMissing(
            f"{AUTH_VAR} is not set. Flower can revoke and terminate tasks, so it runs with basic auth: "
            f"set {AUTH_VAR}=user:password, or pass --insecure-no-auth to run it open (on loopback only)"
        )


def flower_argv(settings: Settings, env: Mapping[str, str], *, address: str, port: int) -> list[str]:
    """The Flower command line. Holds no secret: auth and broker URL go through the environment."""
    return [
        sys.executable, "-m", "celery", "-A", "aep_activator.workers", "flower",
        f"--address={address}",
        f"--port={port}",
        "--persistent=True",
        f"--db={state_file(settings, env)}",
        f"--max_tasks={MAX_TASKS}",
        f"--state_save_interval={STATE_SAVE_INTERVAL_MS}",
        f"--tasks_columns={TASKS_COLUMNS}",
    ]


def state_file(settings: Settings, env: Mapping[str, str]) -> str:
    return env.get(DB_VAR) or settings.flower_db


def flower_env(
    settings: Settings, env: Mapping[str, str], *, insecure_no_auth: bool = False
) -> dict[str, str]:
    """The child's environment: the non-secret settings, then ``env``, then (unless insecure) the credentials."""
    require_auth(settings, env, insecure_no_auth=insecure_no_auth)
    creds = None if insecure_no_auth else credentials(settings, env)
    out = {**settings_env(settings), **{k: v for k, v in env.items() if k != AUTH_VAR}}
    out["REDIS_URL"] = settings.redis_url
    if creds:
        out[AUTH_VAR] = creds
    return out


def settings_env(settings: Settings) -> dict[str, str]:
    """Every set, non-secret setting as its environment variable (``REDIS_URL`` keeps its password)."""
    out = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is not None and not isinstance(value, SecretStr):
            out[name.upper()] = str(value)
    return out


def port_problem(address: str, port: int) -> str | None:
    """Why Flower could not listen on ``address:port`` (in use, not an address here), or ``None``.

    Checked before Flower starts, so a busy port is one line rather than Tornado's ``OSError`` traceback.
    (Another process could still take the port in between; Flower's own error then stands.)
    """
    import socket

    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"FLOWER_ADDRESS: cannot use {address!r} ({exc})"
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            return f"FLOWER_PORT: cannot listen on {address}:{port} ({exc.strerror or exc}); choose another with --port"
    return None


def flower_warnings(*, address: str, port: int, insecure_no_auth: bool) -> list[str]:
    """What an operator must be told before Flower starts with these choices."""
    warnings = []
    if insecure_no_auth:
        warnings.append(
            f"INSECURE: Flower runs WITHOUT authentication on {address}:{port}. Anyone who can reach it can "
            f"read task arguments and revoke or terminate tasks. Set {AUTH_VAR}=user:password to fix."
        )
    if address not in LOOPBACK:
        warnings.append(
            f"Flower listens on {address}:{port}, not loopback: its /metrics endpoint has no authentication "
            "(mher/flower#1342) and is public to whoever reaches that address. Publish the port on "
            "127.0.0.1 only (as docker-compose.yml does) or put a proxy in front that guards /metrics."
        )
    return warnings


def _prepare(settings: Settings, env: Mapping[str, str], address: str, port: int,
             insecure_no_auth: bool) -> tuple[list[str], dict[str, str]]:
    child_env = flower_env(settings, env, insecure_no_auth=insecure_no_auth)
    Path(state_file(settings, env)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return flower_argv(settings, env, address=address, port=port), child_env


def start_flower_process(
    settings: Settings,
    *,
    address: str,
    port: int,
    env: Mapping[str, str],
    insecure_no_auth: bool = False,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start Flower as a child process (the demo and tests); the caller terminates it.

    ``env`` is laid over the settings-derived environment (see :func:`flower_env`); ``popen`` goes
    to ``Popen`` (e.g. ``stdout=``). Raises :class:`FlowerAuthMissing` as :func:`require_auth` does.
    """
    argv, child_env = _prepare(settings, env, address, port, insecure_no_auth)
    return subprocess.Popen(argv, env=child_env, **popen)


def exec_flower(settings: Settings, *, address: str, port: int, env: Mapping[str, str],
                insecure_no_auth: bool = False) -> NoReturn:
    """Replace this process with Flower (the CLI): in a container Flower then receives signals itself."""
    argv, child_env = _prepare(settings, env, address, port, insecure_no_auth)
    os.execve(argv[0], argv, child_env)  # noqa: S606 - a fixed argv, no shell

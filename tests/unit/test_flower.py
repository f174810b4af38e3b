"""Flower: refuses to start without basic auth, says so loudly when told to, and really enforces auth."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aep_activator.config.settings import load_settings
from aep_activator.workers import flower as flower_module
from aep_activator.workers.cli import main
from aep_activator.workers.flower import MAX_TASKS, FlowerAuthMissing, flower_argv, flower_env, start_flower_process

SECRET = "s3cret-pw"


@pytest.fixture
def no_env_auth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FLOWER_BASIC_AUTH in the environment or a .env file."""
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the CLI's exec of Flower instead of replacing the test process."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(flower_module, "exec_flower", lambda settings, **kw: calls.append(kw))
    return calls


def flat(text: str) -> str:
    """Console text without rich's wrapping and panel borders."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def test_flower_refuses_to_start_without_basic_auth(
    no_env_auth: None, exec_calls: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(main, ["flower"])
    assert result.exit_code == 2
    assert "FLOWER_BASIC_AUTH is not set" in flat(result.stderr)
    assert "--insecure-no-auth" in flat(result.stderr)
    assert exec_calls == []


def test_insecure_no_auth_starts_flower_with_a_loud_warning(
    no_env_auth: None, exec_calls: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(main, ["flower", "--insecure-no-auth", "--port", "5599"])
    assert result.exit_code == 0, result.output
    assert "INSECURE: Flower runs WITHOUT authentication on 127.0.0.1:5599" in flat(result.stderr)
    assert exec_calls[0]["insecure_no_auth"] is True
    assert exec_calls[0]["address"] == "127.0.0.1"


def test_binding_beyond_loopback_warns_that_metrics_is_public(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exec_calls: list[dict[str, Any]]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWER_BASIC_AUTH", f"admin:{SECRET}")
    result = CliRunner().invoke(main, ["flower", "--address", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "/metrics endpoint has no authentication" in flat(result.stderr)
    assert "INSECURE" not in result.stderr


def test_the_password_travels_in_the_environment_never_on_the_command_line_and_aep_secrets_stay_home() -> None:
    s = load_settings(
        flower_basic_auth=f"admin:{SECRET}", redis_url="redis://:redispw@127.0.0.1:6379/0", aep_client_secret="aep-pw"
    )
    argv = flower_argv(s, {}, address="127.0.0.1", port=5555)
    assert not any(SECRET in a or "redispw" in a for a in argv)
    assert "--persistent=True" in argv
    assert f"--max_tasks={MAX_TASKS}" in argv
    assert f"--db={s.flower_db}" in argv
    env = flower_env(s, {"PATH": "/bin"})
    assert env["FLOWER_BASIC_AUTH"] == f"admin:{SECRET}"
    assert env["REDIS_URL"] == s.redis_url
    assert env["AEP_QUEUE"] == s.aep_queue  # the child's app is configured like this process's
    assert "AEP_CLIENT_SECRET" not in env  # Flower never calls AEP


def test_insecure_mode_drops_inherited_credentials_and_env_values_win_for_the_demo() -> None:
    s = load_settings()
    assert "FLOWER_BASIC_AUTH" not in flower_env(s, {"FLOWER_BASIC_AUTH": "a:b"}, insecure_no_auth=True)
    assert flower_env(s, {"FLOWER_BASIC_AUTH": "demo:pw"})["FLOWER_BASIC_AUTH"] == "demo:pw"
    assert "--db=/tmp/x.db" in flower_argv(s, {"FLOWER_DB": "/tmp/x.db"}, address="127.0.0.1", port=1)
    with pytest.raises(FlowerAuthMissing):
        flower_env(s, {})


# --- a real Flower process -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"flower exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"flower did not listen on {port} within {timeout_s}s")


@pytest.mark.integration
def test_a_real_flower_answers_401_without_credentials_and_200_with_them(
    redis_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "flower.db"
    s = load_settings(redis_url=redis_url, flower_basic_auth=f"admin:{SECRET}", flower_db=str(db))
    port = _free_port()
    log = (tmp_path / "flower.log").open("wb")
    proc = start_flower_process(s, address="127.0.0.1", port=port, env={"PATH": "/usr/bin:/bin"},
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(proc, port)
        base = f"http://127.0.0.1:{port}"
        assert _status(f"{base}/") == 401
        assert _status(f"{base}/api/workers", auth=f"admin:{SECRET}x") == 401
        assert _status(f"{base}/", auth=f"admin:{SECRET}") == 200
        assert _status(f"{base}/api/workers", auth=f"admin:{SECRET}") == 200
        assert db.parent.is_dir()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert SECRET.encode() not in cmdline
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()

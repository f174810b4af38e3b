"""Every shell command README.md shows, run as written (tests/readmekit.py extracts them), in README order,
against the test's own namespace: a unique key prefix and queue on the test Redis, and the simulator as AEP
(so nothing spends a real quota). The exceptions:

- long-running processes (``worker``, ``beat``, ``flower``, ``api``, ``simulator``) are started, seen ready
  (their own ready line), and stopped; the first ``api`` serves the README's ``curl`` block before it stops;
- ``make test`` is the suite itself: ``make -n test`` shows the target runs pytest;
- ``export`` lines with placeholders (``…``, ``redis.internal``) are checked to name real settings, not applied;
  ``API_KEYS`` is applied with fresh keys in place of ``<sha256>``;
- ``docker compose`` (quoted inline; there is no Docker engine here) is checked against docker-compose.yml.

Placeholders are replaced by real values: ``RUN_ID`` (a succeeded run; for ``resume`` a failed one, for
``cancel`` the run the README's first ``run`` started), ``<dataflow>=<audience>``, ``REQUEST.json``, and the
API's port (8000 may be taken on a shared machine). A command this test does not know how to run fails it.
The README's ``send_task`` snippet is run too, as printed but for the broker URL, the queue and the ids.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from aep_activator.config.settings import Settings
from aep_activator.tasks.producer import start_activation
from aep_activator.tasks.runtime import runtime
from aep_activator.workers.api.keys import new_key
from tests.consolekit import free_port
from tests.integration.conftest import EXAMPLE, wait_for_runs
from tests.readmekit import README, Command, all_commands, inline, python_blocks

pytestmark = pytest.mark.integration

REPO = README.parent
BIN = Path(sys.executable).parent
FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUDIENCE = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
UNMAPPED = "db8961e9-d52f-45bc-b3fb-76d0382a6851"
# What each long-running command prints once it serves.
READY = {
    "worker": r" ready\.",
    "beat": r"beat: Starting",
    "flower": r"Visit me at http",
    "api": r"Application startup complete",
    "simulator": r"AEP simulator listening on",
}
LONG_RUNNING = re.compile(r"^aep-activator (worker|beat|flower|api|simulator)(?=\s|$)")


@dataclass
class Session:
    env: dict[str, str]
    run_ids: dict[str, str]
    log_dir: Path
    api_port: int
    key: str = ""
    api: subprocess.Popen[bytes] | None = None
    ran: list[Command] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    def substitute(self, text: str) -> str:
        run_id = self.run_ids["cancel" if " cancel " in text and "curl" not in text else
                              "resume" if " resume " in text and "curl" not in text else "done"]  # fmt: skip
        text = text.replace("<dataflow>=<audience>[,<audience>]", f"{FLOW}={AUDIENCE}")
        text = text.replace("REQUEST.json", EXAMPLE).replace("http://127.0.0.1:8000", f"http://127.0.0.1:{self.api_port}")
        return re.sub(r"\bRUN_ID\b", run_id, text)

    def run(self, text: str, *, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "KEY": self.key, "RUN_ID": self.run_ids["done"]}
        return subprocess.run(["bash", "-c", text], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip

    def start(self, text: str) -> subprocess.Popen[bytes]:
        """Start a long-running command and wait for its ready line; the caller stops it."""
        name = LONG_RUNNING.match(text).group(1)  # type: ignore[union-attr]
        log_path = self.log_dir / f"readme-{len(self.started)}-{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=REPO, env={**self.env, "PYTHONUNBUFFERED": "1"},
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while not re.search(READY[name], log_path.read_text(errors="replace")):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise AssertionError(f"{text!r} did not get ready (exit {proc.returncode}):\n"
                                     f"{log_path.read_text(errors='replace')[-3000:]}")  # fmt: skip
            time.sleep(0.1)
        self.started.append(text)
        return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_export(session: Session, text: str, entries: tuple[str, str]) -> None:
    names = re.findall(r"\b([A-Z][A-Z0-9_]+)=", text)
    assert names, text
    known = {name.upper() for name in Settings.model_fields}
    assert set(names) <= known, f"{text!r} names variables that are no setting: {set(names) - known}"
    if names == ["API_KEYS"]:
        value = shlex.split(text.removeprefix("export "))[0].partition("=")[2]
        value = value.replace("ops1:ops:<sha256>", entries[0]).replace("billing:producer:<sha256>", entries[1])
        assert "<" not in value, value
        session.env["API_KEYS"] = value


def run_curl_block(session: Session, block: list[Command]) -> None:
    assert session.api is not None, "the README's curl block needs `aep-activator api` before it"
    script = "set -e\n" + "\n".join(session.substitute(c.text) for c in block)
    out = session.run(script)
    assert out.returncode == 0, out.stderr
    for expected in ('"run_id"', '"verdict"', "aep_quota_limit", '"ok"', '"status"'):
        assert expected in out.stdout, (expected, out.stdout[-3000:])
    assert '"unauthorized"' not in out.stdout.lower() and "Not authenticated" not in out.stdout
    session.ran.extend(block)
    stop(session.api)
    session.api = None


def test_every_command_the_readme_shows_runs_as_written(make_stack, tmp_path) -> None:
    stack = make_stack(env={"QUOTA_SEGMENT_JOBS_PER_DAY": "50"})
    api_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "USER")},
        **stack.env(),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # aep-activator on PATH, as after `make install`
        "FLOWER_BASIC_AUTH": "ops:readme-pw",
        "FLOWER_PORT": str(free_port()),
        "FLOWER_DB": str(tmp_path / "flower.db"),
        "API_PORT": str(api_port),
        "COLUMNS": "100",
        "AEP_SCHEDULES_FILE": str(REPO / "config" / "schedules.toml"),
    }
    worker = stack.start_worker()
    done = start_activation({**_example(), "started_by": "readme-test"})
    failed = start_activation({"activation_info": {FLOW: [UNMAPPED]}, "version": 2, "segment_job": False})
    stack.wait_worker_ready(worker)
    wait_for_runs(stack, [done, failed], timeout_s=60)
    assert runtime().ledger.get(failed).status == "failed"  # type: ignore[union-attr]
    session = Session(env=env, run_ids={"done": done, "resume": failed, "cancel": ""}, log_dir=tmp_path,
                      api_port=api_port)  # fmt: skip
    entries = (new_key("ops1", "ops"), new_key("billing", "producer"))
    session.key = entries[0][0]
    commands = all_commands()
    try:
        i = 0
        while i < len(commands):
            cmd = commands[i]
            text = cmd.text
            if text.startswith("H="):
                block = [cmd]
                while i + 1 < len(commands) and commands[i + 1].text.startswith("curl "):
                    i += 1
                    block.append(commands[i])
                run_curl_block(session, block)
                i += 1
                continue
            if text == "make test":
                out = session.run("make -n test")
                assert out.returncode == 0 and "pytest" in out.stdout, out.stdout + out.stderr
            elif text.startswith("export "):
                check_export(session, text, (entries[0][1], entries[1][1]))
            elif "[" in text and text.startswith("aep-activator simulator"):
                help_text = session.run("aep-activator simulator --help").stdout
                for option in re.findall(r"\[(--[a-z-]+)", text):
                    assert option in help_text, (option, text)
                stop(session.start(f"aep-activator simulator --port {free_port()}"))
            elif LONG_RUNNING.match(text):
                proc = session.start(session.substitute(text))
                if text == "aep-activator api" and session.api is None and not any(
                    c.text.startswith("curl ") for c in session.ran
                ):  # the first api serves the curl block that follows
                    session.api = proc
                else:
                    stop(proc)
            elif text.startswith(("make ", "aep-activator ")):
                out = session.run(session.substitute(text))
                assert out.returncode == 0, (cmd.line, text, out.returncode, out.stderr[-3000:], out.stdout[-2000:])
                assert "Traceback" not in out.stderr, out.stderr
                if text == "aep-activator run examples/activation-request.json":
                    session.run_ids["cancel"] = out.stdout.strip()  # printed alone when captured
                    assert re.fullmatch(r"[0-9a-f]{32}", session.run_ids["cancel"]), out.stdout
                if text == "make demo":  # piped, its two tables stay apart and the run succeeds
                    assert "┘summary" not in out.stdout and re.search(r"^summary", out.stdout, re.M), out.stdout
                    assert re.search(r"│ status +│ succeeded", out.stdout), out.stdout
                    # and its header lines never wrap: a key or a password is copied whole from one line
                    assert re.search(r"^console +http\S+/console +\(API key aepk_\S+, role ops", out.stdout, re.M)
                    flower = re.search(r"^flower .*", out.stdout, re.M)  # absent if Flower could not start
                    assert flower is None or re.fullmatch(r"flower +http\S+ +\(user:password demo:\S+\)", flower[0])
                if text == "aep-activator api-key ops1 ops":
                    assert re.search(r"^API_KEYS entry .*: +ops1:ops:[0-9a-f]{64}$", out.stdout, re.M), out.stdout
            else:
                raise AssertionError(f"README line {cmd.line} shows a command this test cannot run: {text!r}")
            session.ran.append(cmd)
            i += 1
    finally:
        if session.api is not None:
            stop(session.api)
    assert [c.line for c in session.ran] == [c.line for c in commands]
    assert {LONG_RUNNING.match(s).group(1) for s in session.started} == set(READY)  # type: ignore[union-attr]


def test_the_readme_send_task_example_reaches_a_worker_as_printed(make_stack) -> None:
    (snippet,) = [b.text for b in python_blocks() if "send_task" in b.text]
    stack = make_stack()
    worker = stack.start_worker()
    code = (snippet.replace("redis://127.0.0.1:6379/0", stack.redis_url)
            .replace('queue="aep-activator"', f"queue={stack.queue!r}")
            .replace("<dataflow id>", FLOW).replace("<audience id>", AUDIENCE))  # fmt: skip
    assert code.count(stack.queue) == 1 and stack.redis_url in code  # only those three were replaced
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own example
    stack.wait_worker_ready(worker)
    ledger = runtime().ledger
    deadline = time.monotonic() + 60
    while not ledger.recent(5):
        assert time.monotonic() < deadline, stack.worker_log()[-3000:]
        time.sleep(0.2)
    (record,) = ledger.recent(5)
    wait_for_runs(stack, [record.run_id])
    assert ledger.get(record.run_id).status == "succeeded"  # type: ignore[union-attr]
    namespace["celery_app"].close()
    # activation.start keeps its result (the run id, as the README says), and a test's soon expires.
    task_id = (record.idempotency_key or "").removeprefix("task:")
    with redis.Redis.from_url(stack.redis_url) as client:
        assert record.run_id.encode() in (client.get(f"celery-task-meta-{task_id}") or b"")
        assert 0 < client.ttl(f"celery-task-meta-{task_id}") <= 600


def test_the_readme_admission_example_prints_the_verdict_and_its_description(
    make_stack, capsys: pytest.CaptureFixture[str]
) -> None:
    (snippet,) = [b.text for b in python_blocks() if "describe_admission" in b.text]
    make_stack()
    request = {"activation_info": {FLOW: [AUDIENCE]}, "version": 2, "segment_job": False}
    namespace: dict[str, Any] = {"request": request}
    exec(compile(snippet, "README.md", "exec"), namespace)  # the README's own example
    created = namespace["created"]
    assert created.verdict == "created" and runtime().ledger.get(created.run_id) is not None
    assert capsys.readouterr().out.startswith("now expected to spend its quota")


def test_the_readme_docker_compose_and_honcho_commands_match_their_files() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    mentioned = [m for m in inline("docker compose") if m != "docker compose"]  # a bare name is no command
    assert mentioned, "the README names no docker compose command"
    for text in mentioned:
        args = shlex.split(text)[2:]
        assert "up" in args, text
        if "--build" in args:
            assert any("build" in s for s in services.values()), "up --build needs a service that builds"
        if "--profile" in args:
            profile = args[args.index("--profile") + 1]
            assert any(profile in s.get("profiles", []) for s in services.values()), text
    assert inline("honcho start")
    procfile = [line for line in (REPO / "Procfile").read_text().splitlines() if line and not line.startswith("#")]
    from aep_activator.workers.cli import main

    for line in procfile:
        _, command = line.split(":", 1)
        words = shlex.split(command)
        assert words[0] == "aep-activator" and words[1] in main.commands, line


def test_an_invalid_request_raises_what_the_readme_says_and_enqueues_nothing(make_stack) -> None:
    from pydantic import ValidationError

    from aep_activator import ActivationRequest, InvalidRequest

    make_stack()
    bad = {"activation_info": {FLOW: [AUDIENCE]}, "version": 1, "bogus": 1}
    with pytest.raises(ValidationError) as built:
        ActivationRequest(**bad)
    with pytest.raises(InvalidRequest) as started:
        start_activation(bad)
    assert isinstance(built.value, ValueError) and isinstance(started.value, ValueError)
    assert "bogus" in str(started.value)
    assert runtime().ledger.recent(5) == []


def _example() -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((REPO / EXAMPLE).read_text())
    return data

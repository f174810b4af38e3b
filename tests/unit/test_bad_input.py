"""Bad input, everywhere it can enter: each row gets a clear error naming the problem, and nothing is enqueued.

Entry points: the producer API (``tasks.start_activation``), the CLI (``python -m workers run -``), the
public task ``activation.start`` sent by name to a real worker, the environment (settings, Redis URL,
schedule file), and AEP itself answering garbage (``aep.client.AEPClient`` against a local stub; and a
real worker whose poll gets garbage must fail the run after its bounded retries and stay alive).
Rows that need Redis, a worker or the simulator are marked ``integration``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from pydantic import SecretStr

from aep_activator.aep.api.auth import StaticToken
from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import MalformedResponse
from aep_activator.aep.pipeline.schedules import parse_cron
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.config.settings import load_settings
from aep_activator.devstack.stack import REPO_ROOT
from aep_activator.tasks import InvalidRequest, runtime, start_activation
from aep_activator.workers import app
from tests.integration.conftest import (
    make_stack,  # noqa: F401 - the fixture, used by name below
    wait_for_runs,
)

FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUDIENCE = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
OTHER_AUDIENCE = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
GOOD = {"activation_info": {FLOW: [AUDIENCE]}, "version": 2, "segment_job": False}
EXAMPLE = json.loads((REPO_ROOT / "examples" / "activation-request.json").read_text())
BAD_TIME = {
    **EXAMPLE,
    "export_job": {
        **EXAMPLE["export_job"],
        "filter": {**EXAMPLE["export_job"]["filter"], "fromIngestTimestamp": "yesterday"},
    },
}

# (row id, request as given by a producer, words the error must contain)
BAD_REQUESTS: list[tuple[str, Any, list[str]]] = [
    ("malformed JSON", '{"activation_info": ', ["Invalid JSON"]),
    ("unknown field", {**GOOD, "bogus_field": 1}, ["bogus_field", "Extra inputs are not permitted"]),
    ("empty dataflow id", {**GOOD, "activation_info": {"": [AUDIENCE]}}, ["activation_info", "at least 1 character"]),
    ("empty audience id", {**GOOD, "activation_info": {FLOW: [""]}}, [f"activation_info.{FLOW}.0", "at least 1"]),
    ("no audiences", {**GOOD, "activation_info": {FLOW: []}}, [f"activation_info.{FLOW}", "at least 1 item"]),
    (
        "81 audiences",
        {**GOOD, "activation_info": {FLOW: [str(uuid.UUID(int=i)) for i in range(81)]}},
        ["81 audiences", "at most 80"],
    ),
    ("bad RFC 3339 time", BAD_TIME, ["export_job.filter.fromIngestTimestamp", "RFC 3339"]),
]
IDS = [row[0] for row in BAD_REQUESTS]


# --- the producer API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "request_", "words"), BAD_REQUESTS, ids=IDS)
def test_a_bad_request_is_refused_by_start_activation_before_redis_is_touched(name, request_, words):
    # An unreachable Redis: had start_activation recorded or enqueued anything, this would be a
    # ConnectionError instead of InvalidRequest.
    runtime.configure(load_settings(redis_url="redis://127.0.0.1:1/0", aep_key_prefix="never:"))
    try:
        with pytest.raises(InvalidRequest) as caught:
            start_activation(request_)
    finally:
        runtime.configure(None)
    for word in words:
        assert word in str(caught.value), (name, str(caught.value))


@pytest.mark.integration
@pytest.mark.parametrize(("name", "request_", "words"), BAD_REQUESTS, ids=IDS)
def test_a_bad_request_leaves_the_run_ledger_and_the_queue_unchanged(name, request_, words, redis_url, key_prefix):
    queue = f"q-{key_prefix.rstrip(':').replace(':', '-')}"
    runtime.configure(load_settings(redis_url=redis_url, aep_key_prefix=key_prefix, aep_queue=queue))
    client = runtime.runtime().redis
    try:
        with pytest.raises(InvalidRequest, match=words[0].replace(".", r"\.")):
            start_activation(request_)
        assert list(client.scan_iter(match=key_prefix + "*")) == []
        assert client.llen(queue) == 0
    finally:
        runtime.configure(None)


# --- the CLI ------------------------------------------------------------------------------------------------


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any activator setting, plus ``values``."""
    prefixes = ("AEP_", "REDIS_", "FLOWER_", "QUOTA_", "POLL_", "RETRY_", "VISIBILITY_", "TASK_", "CELERY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1", "COLUMNS": "200", **values}


def cli(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aep_activator.workers", *args],
        input=stdin, env=env, cwd=cwd, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def sim_credentials(**extra: str) -> dict[str, str]:
    return clean_env(
        AEP_CLIENT_ID="sim-client",
        AEP_CLIENT_SECRET="sim-secret",
        AEP_ORG_ID="SIMORG0000000000000000000@AdobeOrg",
        AEP_BASE_URL="http://127.0.0.1:9",
        AEP_IMS_URL="http://127.0.0.1:9",
        **extra,
    )


@pytest.mark.integration
@pytest.mark.parametrize(("name", "request_", "words"), BAD_REQUESTS, ids=IDS)
def test_the_cli_refuses_a_bad_request_on_stdin_with_exit_2_and_enqueues_nothing(
    name, request_, words, redis_url, key_prefix, tmp_path
):
    queue = f"q-{key_prefix.rstrip(':').replace(':', '-')}"
    env = sim_credentials(REDIS_URL=redis_url, AEP_KEY_PREFIX=key_prefix, AEP_QUEUE=queue)
    text = request_ if isinstance(request_, str) else json.dumps(request_)
    result = cli(["run", "-"], env, tmp_path, stdin=text)
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())
    expected = ["not valid JSON"] if name == "malformed JSON" else words
    for word in expected:
        assert word in message, (name, result.stderr)
    with redis.Redis.from_url(redis_url) as client:
        assert list(client.scan_iter(match=key_prefix + "*")) == []
        assert client.llen(queue) == 0


# --- the public task, sent by name to a real worker -----------------------------------------------------


@pytest.mark.integration
def test_the_public_task_fails_with_the_validation_message_and_creates_no_run(request, redis_client):
    stack = request.getfixturevalue("make_stack")(SimulatorConfig(speed=600, seed=3))
    stack.wait_worker_ready(stack.start_worker())
    rows = [row for row in BAD_REQUESTS if not isinstance(row[1], str)]  # a task's kwargs are JSON already
    rows.append(("wrong type", {**GOOD, "activation_info": "not-a-mapping"}, ["activation_info"]))
    problems = []
    for name, request_, words in rows:
        result = app.send_task("activation.start", kwargs=request_, queue=stack.queue)
        try:
            result.get(timeout=30, propagate=False)
            text = f"{result.result}\n{result.traceback}"
            if result.state != "FAILURE" or "invalid activation request" not in text:
                problems.append((name, result.state, text[-300:]))
            problems += [(name, f"missing {w!r}") for w in words if w not in text]
        finally:
            result.forget()
    assert not problems, problems
    assert list(redis_client.scan_iter(match=f"{stack.prefix}run:*")) == []
    assert redis_client.zcard(f"{stack.prefix}runs") == 0
    assert redis_client.llen(stack.queue) == 0
    # A good request starts a run that says where it came from (no producer named itself).
    result = app.send_task("activation.start", kwargs=GOOD, queue=stack.queue)
    try:
        run_id = result.get(timeout=30)["run_id"]
    finally:
        result.forget()
    assert redis_client.hget(f"{stack.prefix}run:{run_id}", "started_by") == b"send_task"


# --- the environment: settings, Redis URL, schedule file ------------------------------------------------


def test_config_check_without_aep_client_id_exits_2_and_names_it(tmp_path):
    env = sim_credentials()
    del env["AEP_CLIENT_ID"]
    result = cli(["config", "check"], env, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "AEP_CLIENT_ID" in result.stderr and "required" in result.stderr


def test_a_redis_url_with_an_http_scheme_is_a_settings_error_naming_redis_url(tmp_path):
    # Reproduction: `import workers` builds the Celery app from the settings, so an invalid setting
    # escapes the CLI's own handling as a SettingsError traceback with exit 1 (any command, any invalid
    # variable). Fix in workers/app.py create_app (see the report): turn SettingsError into exit 2.
    result = cli(["config", "check"], sim_credentials(REDIS_URL="http://127.0.0.1:6379/0"), tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "REDIS_URL" in result.stderr and "redis://" in result.stderr
    assert "127.0.0.1:6379" not in result.stderr  # a bad value is named, never echoed


@pytest.mark.parametrize(
    "args", [["run", "-d", f"{FLOW}={AUDIENCE}", "--version", "2", "--no-segment-job"], ["quota"]], ids=["run", "quota"]
)
def test_an_unreachable_redis_makes_the_cli_exit_3_with_a_clear_message(args, tmp_path):
    result = cli(args, sim_credentials(REDIS_URL="redis://127.0.0.1:1/0"), tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "REDIS_URL: cannot reach Redis" in message, message


@pytest.mark.parametrize(
    ("expr", "words"),
    [("61 * * * *", ["minute", "61"]), ("* * *", ["5 fields"]), ("0 6 * * funday", ["day_of_week", "funday"])],
)
def test_a_bad_cron_expression_is_refused_naming_the_field(expr, words):
    with pytest.raises(ValueError) as caught:
        parse_cron(expr)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_schedules_check_refuses_a_bad_cron_with_exit_2_naming_the_schedule(tmp_path):
    path = tmp_path / "schedules.toml"
    path.write_text(
        '[[schedule]]\nname = "nightly"\ncron = "61 * * * *"\n'
        f'[schedule.request]\nversion = 2\nsegment_job = false\nactivation_info = {{ "{FLOW}" = ["{AUDIENCE}"] }}\n'
    )
    result = cli(["schedules", "check", "--file", str(path)], sim_credentials(), tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "nightly" in message and "cron" in message and "minute" in message, message


# --- hostile AEP answers ----------------------------------------------------------------------------------


class Stub:
    """A tiny HTTP server in a thread: ``answer(method, path) -> (status, content_type, body) | None``.

    ``None`` forwards the request to ``upstream`` (the simulator) unchanged.
    """

    def __init__(self, answer: Callable[[str, str], tuple[int, str, bytes] | None], upstream: str | None = None):
        self.answer = answer
        self.upstream = upstream
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                canned = stub.answer(self.command, self.path)
                if canned is None:
                    assert stub.upstream is not None
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    up = requests.request(
                        self.command, stub.upstream + self.path, data=body, headers=headers, timeout=10
                    )
                    canned = (up.status_code, up.headers.get("Content-Type", "application/json"), up.content)
                status, ctype, payload = canned
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    stubs: list[Stub] = []

    def make(answer: Callable[[str, str], tuple[int, str, bytes] | None], upstream: str | None = None) -> Stub:
        stubs.append(Stub(answer, upstream))
        return stubs[-1]

    yield make
    for s in stubs:
        s.stop()


JSON = "application/json"
HOSTILE: list[tuple[str, tuple[int, str, bytes], list[str]]] = [
    ("missing fields", (200, JSON, b'{"id": "job-1"}'), ["SegmentJob", "status", "Field required"]),
    ("wrong types", (200, JSON, b'{"id": ["job-1"], "status": "PROCESSING"}'), ["SegmentJob", "id"]),
    ("HTML instead of JSON", (200, "text/html", b"<html><body>Gateway error</body></html>"), ["text/html", "JSON"]),
    ("a huge body", (200, JSON, b'{"id": "' + b"x" * 5000 + b'"}'), ["larger than 4096 bytes"]),
    ("an unknown status", (200, JSON, b'{"id": "job-1", "status": "EXPLODED"}'), ["SegmentJob", "status"]),
]


@pytest.mark.parametrize(("name", "answer", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_aep_answer_is_a_malformed_response_with_a_clear_message(name, answer, words, stub):
    server = stub(lambda method, path: answer)
    client = AEPClient(
        server.url, tokens=StaticToken(SecretStr("t")), api_key="k", org_id="o", max_body_bytes=4096, timeout=(2, 5)
    )
    try:
        with pytest.raises(MalformedResponse) as caught:
            client.segment_jobs.get("job-1")
    finally:
        client.close()
    for word in words:
        assert word in str(caught.value), (name, str(caught.value))


@pytest.mark.integration
def test_garbage_on_a_poll_fails_the_run_after_bounded_retries_and_the_worker_serves_the_next_run(request, stub):
    garbage = {"on": True}

    def answer(method: str, path: str) -> tuple[int, str, bytes] | None:
        if garbage["on"] and method == "GET" and path.startswith("/data/foundation/flowservice/runs/"):
            return 200, "text/html", b"<html>upstream timeout</html>"
        return None

    stack = request.getfixturevalue("make_stack")(SimulatorConfig(speed=600, seed=5), env={"RETRY_MAX": "2"})
    proxy = stub(answer, upstream=stack.sim_url)
    stack.env_overrides["AEP_BASE_URL"] = proxy.url  # AEP paths through the stub; IMS stays at the simulator
    from aep_activator.tasks.celery import configure

    configure(stack.settings())
    worker = stack.start_worker()
    stack.wait_worker_ready(worker)
    first = start_activation(GOOD)
    (failed,) = wait_for_runs(stack, [first], timeout_s=60)
    assert failed.status == "failed" and failed.step == "poll_activation", (failed.status, failed.step)
    assert "gave up after 2 retries" in (failed.error or ""), failed.error
    assert "FlowRunList" in (failed.error or "") and "text/html" in (failed.error or ""), failed.error
    assert worker.poll() is None, "the worker died on a hostile answer"

    garbage["on"] = False
    second = start_activation({**GOOD, "activation_info": {FLOW: [OTHER_AUDIENCE]}})
    (ok,) = wait_for_runs(stack, [second], timeout_s=60)
    assert ok.status == "succeeded", (ok.status, ok.error)
    assert worker.poll() is None
    assert stack.worker_log().count(" ready.") == 1, "the worker restarted"

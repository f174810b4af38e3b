"""The CLI as a new user and an ops engineer meet it (issue 14): the installed ``aep-activator`` binary, run
as a real process with the conditions described, its exit code and its one-line message.

Exit codes (README, *CLI*): 2 bad input or configuration (a malformed ``REDIS_URL`` too), 3 Redis cannot be
reached, 4 a quota used up with ``--on-quota fail``; ``status`` says the run's state: 0 succeeded, 5 failed,
6 cancelled, 7 still open, 1 no such run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aep_activator.aepsim.config import SimulatorConfig
from tests.integration.conftest import EXAMPLE

pytestmark = pytest.mark.integration

BINARY = str(Path(sys.executable).with_name("aep-activator"))
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
MAPPED = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
OTHER = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
UNMAPPED = "db8961e9-d52f-45bc-b3fb-76d0382a6851"  # the fixture maps it to no dataflow: preflight fails the run


def aep(env: dict[str, str], *args: str, timeout: float = 60,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``aep-activator ARGS`` with exactly ``env`` on top of PATH/HOME, stdout and stderr captured (not a tty)."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run([BINARY, *args], env={**base, "COLUMNS": "80", **env}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)  # fmt: skip


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    return lines[0]


CREDENTIALS = {"AEP_CLIENT_ID": "cli-test", "AEP_CLIENT_SECRET": "cli-secret", "AEP_ORG_ID": "ABC123@AdobeOrg"}
COMMANDS = [["status", "r1"], ["runs"], ["cancel", "r1"], ["resume", "r1"], ["quota"], ["run", EXAMPLE],
            ["reconcile"], ["config", "check"]]  # fmt: skip


def db_99(redis_url: str) -> str:
    return re.sub(r"/\d+$", "", redis_url) + "/99"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0] + ("-" + a[1] if a[0] == "config" else ""))
def test_every_command_says_in_one_line_that_redis_cannot_be_reached_and_exits_3(args, tmp_path):
    port = _closed_port()
    out = aep({**CREDENTIALS, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "AEP_KEY_PREFIX": "cli-unreachable:"},
              *args)  # fmt: skip
    assert out.returncode == 3, (out.returncode, out.stderr[-2000:])
    line = one_line_error(out)
    assert "REDIS_URL" in line and ("cannot reach Redis" in line or "configuration check failed" in line)


@pytest.mark.parametrize("args", [["status", "r1"], ["runs"], ["cancel", "r1"], ["resume", "r1"]], ids=lambda a: a[0])
def test_a_database_redis_refuses_and_a_malformed_port_are_one_line_each(args, redis_url):
    out = aep({**CREDENTIALS, "REDIS_URL": db_99(redis_url)}, *args)
    assert out.returncode == 3, (out.returncode, out.stderr[-2000:])
    assert "DB index is out of range" in one_line_error(out)
    out = aep({**CREDENTIALS, "REDIS_URL": "redis://127.0.0.1:notaport/1"}, *args)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "REDIS_URL: not a valid Redis URL" in one_line_error(out)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns: nothing listens there


def test_config_check_contacts_redis_and_checks_the_org_id_with_a_mark_per_check(make_stack, redis_url):
    stack = make_stack()
    env = stack.env()
    good = aep(env, "config", "check", "--online")
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr
    for check in ("REDIS_URL: Redis answers", "maxmemory-policy: noeviction", "AEP_ORG_ID: an IMS org id",
                  "AEP (online): IMS token fetched"):  # fmt: skip
        assert f"✓ {check}" in good.stdout
    assert "None" not in good.stdout  # unset values print as "-"
    assert env["AEP_CLIENT_SECRET"] not in good.stdout + good.stderr

    bad_org = aep({**env, "AEP_ORG_ID": "foo"}, "config", "check")
    assert bad_org.returncode == 2
    assert "✗ AEP_ORG_ID: 'foo' does not end in @AdobeOrg" in bad_org.stdout
    assert "AEP_ORG_ID" in one_line_error(bad_org)

    db99 = aep({**env, "REDIS_URL": db_99(redis_url)}, "config", "check")
    assert db99.returncode == 3 and "✗ REDIS_URL" in db99.stdout and "DB index is out of range" in db99.stdout
    port = aep({**env, "REDIS_URL": "redis://127.0.0.1:notaport/1"}, "config", "check")
    assert port.returncode == 2 and "✗ REDIS_URL: not a valid Redis URL" in port.stdout


def test_commands_that_need_the_org_say_so_and_exit_2(make_stack):
    full = make_stack().env()
    env = {k: v for k, v in full.items() if k != "AEP_ORG_ID"}
    for args in (["quota"], ["run", EXAMPLE], ["run", "--on-quota", "fail", EXAMPLE]):
        out = aep(env, *args)
        assert out.returncode == 2, (args, out.returncode, out.stderr[-2000:])
        assert "AEP_ORG_ID" in one_line_error(out)
    assert aep(full, "runs", "--json").stdout.strip() == "[]"


def test_a_run_naming_no_sandbox_without_aep_sandbox_name_is_refused_and_nothing_is_recorded(make_stack):
    """Found by a new user: unset, the ledger kept 'default' apart from 'prod' (AEP's default), so a third
    segment job was admitted 'now' against a daily limit of 2 and AEP answered 429."""
    full = make_stack().env()
    env = {k: v for k, v in full.items() if k != "AEP_SANDBOX_NAME"}
    out = aep(env, "run", EXAMPLE)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "AEP_SANDBOX_NAME: required to record a run" in one_line_error(out)
    named = aep(env, "run", "--sandbox", "prod", EXAMPLE)  # a request that names its sandbox needs no default
    assert named.returncode == 0, named.stderr
    (only,) = json.loads(aep(full, "runs", "--json").stdout)
    assert only["run_id"] == named.stdout.strip()


def test_run_prints_the_id_alone_when_captured_and_an_existing_key_shows_the_real_status(make_stack):
    env = make_stack().env()
    first = aep(env, "run", "--idempotency-key", "k-1", EXAMPLE)
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip()
    assert RUN_ID.match(run_id), first.stdout  # RUN=$(aep-activator run f.json) captures the id
    assert f"follow it with: aep-activator status --watch {run_id}" in first.stderr
    assert aep(env, "cancel", run_id).returncode == 0
    again = aep(env, "run", "--idempotency-key", "k-1", EXAMPLE)
    assert again.returncode == 0 and again.stdout.strip() == run_id
    assert "already exists for this idempotency key: cancelled" in again.stderr
    assert "queued" not in again.stderr


def test_an_existing_key_of_a_failed_run_says_how_to_resume_it(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker())
    env = stack.env()
    # An audience not mapped to the dataflow: the preflight fails the run at once, spending nothing.
    args = ("run", "--idempotency-key", "k-failed", "--version", "2", "--no-segment-job",
            "-d", "b0780cb5-2bb7-4409-bf2c-c625ca818588=3a1b2c3d-4e5f-6789-abcd-ef0123456789")  # fmt: skip
    first = aep(env, *args)
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip()
    deadline = time.monotonic() + 60
    while (status := aep(env, "status", run_id)).returncode == 7:  # still open
        assert time.monotonic() < deadline, status.stdout
        time.sleep(0.5)
    assert status.returncode == 5, status.stdout  # failed
    again = aep(env, *args)
    assert again.returncode == 0 and again.stdout.strip() == run_id, again.stderr
    assert "already exists for this idempotency key: failed" in again.stderr
    assert f"to restart it from the step that failed: aep-activator resume {run_id}" in again.stderr


def test_on_quota_fail_names_the_reset_in_utc_with_a_countdown_and_exits_4(make_stack):
    env = {**make_stack().env(), "QUOTA_SEGMENT_JOBS_PER_DAY": "1"}
    assert aep(env, "run", "--on-quota", "fail", EXAMPLE).returncode == 0
    out = aep(env, "run", "--on-quota", "fail", EXAMPLE)
    assert out.returncode == 4, out.stderr
    line = one_line_error(out)
    assert re.search(r"resets at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ h \d+ min\)", line), line
    assert not re.search(r"\b1[78]\d{8}\b", line)  # no epoch seconds


def test_runs_and_quota_never_truncate_ids_or_names_on_a_narrow_terminal(make_stack):
    env = make_stack().env()
    run_id = aep(env, "run", EXAMPLE).stdout.strip()
    for columns in ("80", "60"):
        runs = aep({**env, "COLUMNS": columns}, "runs")
        assert runs.returncode == 0 and run_id in runs.stdout, runs.stdout
        quota = aep({**env, "COLUMNS": columns}, "quota")
        assert quota.returncode == 0, quota.stderr
        assert "segment_jobs_year" in quota.stdout and env["AEP_ORG_ID"] in quota.stdout, quota.stdout
        assert "…" not in runs.stdout + quota.stdout


def test_status_shows_every_wait_and_exits_with_the_run_state(make_stack):
    # Speed 1 and a 30 s first poll: the segment job stays PROCESSING, so the run waits on an AEP poll.
    slow_polls = {"POLL_SEGMENT_INITIAL_S": "30", "POLL_SEGMENT_CAP_S": "60", "POLL_ACTIVATION_INITIAL_S": "30",
                  "POLL_ACTIVATION_CAP_S": "60"}  # fmt: skip
    stack = make_stack(SimulatorConfig(speed=1, seed=14), env=slow_polls)
    env = stack.env()
    worker = stack.start_worker()
    polling = aep(env, "run", "-d", f"{FLOW}={MAPPED}", "--version", "2").stdout.strip()
    failing = aep(env, "run", "-d", f"{FLOW}={UNMAPPED}", "--version", "2", "--no-segment-job").stdout.strip()
    activating = aep(env, "run", "-d", f"{FLOW}={OTHER}", "--version", "2", "--no-segment-job").stdout.strip()
    # A queue no worker reads, named after the stack's so that its cleanup removes kombu's keys for it.
    queued_only = aep({**env, "AEP_QUEUE": f"{stack.queue}-nobody-reads-this"}, "run", EXAMPLE).stdout.strip()
    stack.wait_worker_ready(worker)
    deadline = time.monotonic() + 60
    while True:
        record = json.loads(aep(env, "status", "--json", polling).stdout)
        failed = json.loads(aep(env, "status", "--json", failing).stdout)
        flow = json.loads(aep(env, "status", "--json", activating).stdout)
        if (record.get("waiting_reason") and record["step"] == "poll_segment_job" and failed["status"] == "failed"
                and flow["step"] == "poll_activation" and flow.get("waiting_reason")):  # fmt: skip
            break
        assert time.monotonic() < deadline, (record, failed, stack.worker_log()[-3000:])
        time.sleep(0.3)
    assert record["status"] == "running"  # an AEP poll: not "waiting", which is for quotas and audiences
    shown = aep(env, "status", polling)
    assert shown.returncode == 7, shown.stderr
    waits = [line for line in shown.stdout.splitlines() if line.startswith("waiting: segment job")]
    flat = " ".join(shown.stdout.split())
    assert waits and re.search(r"is (NEW|QUEUED|PROCESSING) \(next check ", flat), shown.stdout
    assert aep(env, "status", failing).returncode == 5
    assert flow["waiting_reason"] == "1 of 1 flow run still running"  # its plural agrees with its count
    assert aep(env, "status", "--json", queued_only).returncode == 7
    assert aep(env, "cancel", polling).returncode == 0
    assert aep(env, "status", polling).returncode == 6
    assert aep(env, "status", "no-such-run").returncode == 1


def test_flower_on_a_busy_port_says_so_in_one_line_and_exits_2(make_stack):
    env = {**make_stack().env(), "FLOWER_BASIC_AUTH": "ops:pw"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = aep(env, "flower", "--port", str(port))
    assert out.returncode == 2
    assert f"FLOWER_PORT: cannot listen on 127.0.0.1:{port}" in one_line_error(out)


def test_a_settings_error_names_the_variable_and_no_strict_checks_does_not_downgrade_it(make_stack):
    env = {**make_stack().env(), "VISIBILITY_TIMEOUT_S": "10", "TASK_TIME_LIMIT_S": "20"}
    out = aep(env, "worker", "--no-strict-checks")
    assert out.returncode == 2
    line = one_line_error(out)
    assert line.startswith("error: invalid configuration: VISIBILITY_TIMEOUT_S must be above TASK_TIME_LIMIT_S")
    assert "SETTINGS" not in line


def test_too_many_audiences_names_activation_info(make_stack):
    env = make_stack().env()
    audiences = ",".join(f"a{i}" for i in range(81))
    out = aep(env, "run", "-d", f"{FLOW}={audiences}", "--version", "2", "--no-segment-job")
    assert out.returncode == 2
    assert "activation_info: 81 audiences in one ad-hoc job; AEP allows at most 80" in one_line_error(out)
    assert "request: request:" not in out.stderr


def test_schedules_work_from_any_directory_and_a_disabled_schedule_lists_no_fire_times(tmp_path):
    env = {"AEP_KEY_PREFIX": "cli-schedules:"}
    checked = aep(env, "schedules", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "config/schedules.toml: OK (2 schedules, 1 enabled)" in checked.stdout
    listed = aep(env, "schedules", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if line.startswith("│ ") and
            line.split("│")[1].strip()}  # fmt: skip
    assert set(rows) == {"email-audience", "weekly-latest-results"}  # whole names, none wrapped mid-word
    assert "never (disabled)" in rows["weekly-latest-results"]
    assert not re.search(r"\d{4}-\d\d-\d\d", rows["weekly-latest-results"])


def test_a_second_beat_says_it_is_on_standby_while_another_holds_the_lock(make_stack, redis_client):
    stack = make_stack()
    env = stack.env()
    redis_client.set(f"{stack.prefix}redbeat::lock", "another-beat", px=60_000)
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    proc = subprocess.Popen([BINARY, "beat"], env={**base, **env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "standby" in line or not line:
                break
        assert any(
            re.search(r"beat: standby: another beat holds the lock \S+redbeat::lock \(until \d\d:\d\d:\d\d UTC", s)
            for s in seen
        ), "".join(seen)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()

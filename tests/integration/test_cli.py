"""The CLI as a user runs it: a real process, real Redis, a real worker and the simulator."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.integration.conftest import EXAMPLE, wait_for_runs

pytestmark = pytest.mark.integration


def cli(stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env()}
    return subprocess.run(
        [sys.executable, "-m", "aep_activator.workers", *args],
        env=env, capture_output=True, text=True, input=stdin, timeout=60
    )


def test_run_json_then_status_json_follow_a_run_to_success(make_stack):
    stack = make_stack()
    stack.wait_worker_ready(stack.start_worker())
    out = cli(stack, "run", "--json", EXAMPLE)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]
    wait_for_runs(stack, [run_id])
    status = cli(stack, "status", "--json", run_id)
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)
    assert record["status"] == "succeeded" and record["segment_job_id"] and record["export_job_id"]
    assert stack.env()["AEP_CLIENT_SECRET"] not in status.stdout
    table = cli(stack, "status", run_id)
    assert "poll_activation" in table.stdout and "SUCCEEDED" in table.stdout
    watched = cli(stack, "status", "--watch", run_id)  # piped: the timeline once, a whole last line
    assert watched.returncode == 0 and "SUCCEEDED" in watched.stdout and watched.stdout.endswith("\n"), watched
    quota = cli(stack, "quota", "--json")
    assert {q["quota"]: q["used"] for q in json.loads(quota.stdout)} == {
        "adhoc": 1, "segment_jobs": 1, "segment_jobs_year": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["run", "-"], "{not json", "not valid JSON"),
        (["run", "-"], '{"activation_info": {"d": ["a"]}, "bogus": 1}', "bogus"),
        (["run", "-d", "dest=a"], None, "export_job: required for ad-hoc v1"),
        (["run", "-d", "dest=a", "--version", "2", "--dataset", "ds"], None, "v2 takes no export job"),
        (["run", "-d", "oops"], None, "DATAFLOW_ID=AUDIENCE"),
        (["run", "missing.json"], None, "missing.json"),
    ],
)
def test_bad_input_exits_non_zero_naming_the_problem_and_enqueues_nothing(make_stack, args, stdin, message):
    stack = make_stack()
    out = cli(stack, *args, stdin=stdin)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr
    assert cli(stack, "runs", "--json").stdout.strip() == "[]"


def test_status_of_an_unknown_run_says_so(make_stack):
    stack = make_stack()
    out = cli(stack, "status", "nope")
    assert out.returncode == 1 and "no run 'nope'" in out.stderr


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: no psutil needed)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent and p not in out]
        out.update(kids)
        frontier.extend(kids)
    return out


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_demo_keep_running_stops_everything_it_started_on_sigterm_as_on_ctrl_c(redis_url: str) -> None:
    """Found by a new user: a SIGTERM (a closed terminal, timeout, systemd) ended only the demo process and
    left its worker, Flower and api running, and its keys in Redis."""
    import signal
    import time

    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "aep-activator"), "demo", "--keep-running"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if "stack left running" in line:
            break
    else:
        raise AssertionError("".join(lines)[-3000:])
    started = _descendants(proc.pid)
    assert started, "the demo started no process"
    # The line it prints for another shell reaches the demo's run (its prefix and queue, not the defaults).
    shown = next(line for line in lines if line.startswith("other shell"))
    command = shlex.split(shown.removeprefix("other shell"))
    assigned = dict(word.split("=", 1) for word in command if "=" in word)
    assert set(assigned) == {"REDIS_URL", "AEP_KEY_PREFIX", "AEP_QUEUE"}, shown
    argv = [os.path.join(os.path.dirname(sys.executable), command[3]), *command[4:]]
    status = subprocess.run(argv, env={**os.environ, **assigned}, capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and "succeeded" in status.stdout, (shown, status.stdout, status.stderr)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=90)[0]
    assert proc.returncode == 0, "".join(lines)[-2000:] + rest
    assert "stopped everything" in rest, rest
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") and not _zombie(p) for p in started):
        assert time.monotonic() < deadline, [p for p in started if os.path.exists(f"/proc/{p}")]
        time.sleep(0.2)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

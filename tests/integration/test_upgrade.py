"""Runs in flight survive the upgrade: the previous release starts them, the current one finishes them.

The previous release is commit ``PREVIOUS`` of this repository (before the run ledger carried every
run: layout 1), unpacked with ``git archive`` and run from its own directory with its own import names
(``aep``, ``tasks``, ``workers``), on the same Redis, key prefix, queue and simulator. Its worker starts
runs and is stopped with runs waiting in its delay queue and one message still in the broker queue; a
worker of this release then finishes every run, with one accepted POST per step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pytest

from aep_activator.aep.api import paths
from aep_activator.aep.coordination.runs import LAYOUT
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.devstack.stack import REPO_ROOT
from aep_activator.tasks import runtime
from aep_activator.tasks.producer import quota_usage
from tests.integration.conftest import wait_for_runs

pytestmark = pytest.mark.integration

PREVIOUS = "c9d59e1786cda2d4b80840a8fd525e60149e3fc4"
S3, SFTP = "b0780cb5-2bb7-4409-bf2c-c625ca818588", "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
AUD_A, AUD_B, AUD_C = (
    "4afe34ae-8c98-4513-8a1d-67ccaa54bc05",
    "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c",
    "3a1b2c3d-4e5f-6789-abcd-ef0123456789",
)


LAYOUT_2 = "fff3628d1ac9da926a1438140516c16976c544fa"  # the last release of ledger layout 2 (one hash a run)


def previous_release(tmp_path: Path, commit: str = PREVIOUS) -> Path:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tmp_path / "previous", filter="data")
    return tmp_path / "previous"


def old_env(stack_env: dict[str, str], old: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEP_", "REDIS_", "POLL_", "QUOTA_"))}
    # The previous release wanted VISIBILITY_TIMEOUT_S > TASK_TIME_LIMIT_S and knew nothing of the new settings.
    # Its first segment-job poll waits 15 s in its delay queue: long enough that the worker is stopped, even
    # on a loaded machine, while every poll is still there (with the stack's fast polls, a poll due during
    # the shutdown went back to the broker and the delay queue was empty). Its schedule caps every delay,
    # the first included, so the cap is raised with it: with the stack's 1 s cap the polls waited 1 s and
    # the test failed whenever the stop came while both (in step) were out of the delay queue.
    return {**env, **stack_env, "PYTHONPATH": str(old), "PYTHONUNBUFFERED": "1", "TASK_TIME_LIMIT_S": "20",
            "VISIBILITY_TIMEOUT_S": "30", "POLL_SEGMENT_INITIAL_S": "15", "POLL_SEGMENT_CAP_S": "15"}  # fmt: skip


def produce_with_previous(old: Path, env: dict[str, str], requests: list[dict[str, object]]) -> list[str]:
    code = (
        "import json, sys\nimport workers\nfrom tasks import start_activation\n"
        "print(json.dumps([start_activation(r) for r in json.loads(sys.argv[1])]))"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(requests)], cwd=old, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def v1(flow: str, audience: str) -> dict[str, object]:
    return {
        "activation_info": {flow: [audience]},
        "export_job": {
            "filter": {"segments": [{"segmentId": audience}]},
            "destination": {"datasetId": "5b7c86968f7b6501e21ba9df"},
            "schema": {"name": "_xdm.context.profile"},
        },
        "started_by": "previous-release",
    }  # fmt: skip


def test_runs_started_by_the_previous_release_are_finished_by_this_one(make_stack, tmp_path):
    old = previous_release(tmp_path)
    # Segment jobs take ~13 s here: long enough to stop the old worker while its runs wait on them.
    stack = make_stack(SimulatorConfig(speed=60, seed=17), env={"QUOTA_SEGMENT_JOBS_PER_DAY": "10"})
    env = old_env(stack.env(), old)
    log = open(stack.log_dir / "previous.log", "ab")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", stack.queue, "--concurrency=2",
         "--loglevel=INFO", "--without-mingle", "--without-gossip", f"--hostname=previous-{stack.prefix}@%h"],
        cwd=old, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while " ready." not in (stack.log_dir / "previous.log").read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, "the previous release's worker did not start"
            time.sleep(0.1)
        waiting = produce_with_previous(old, env, [v1(S3, AUD_A), v1(SFTP, AUD_C)])
        redis_client = runtime.runtime().redis
        deadline = time.monotonic() + 30
        # Stop once each run's segment-job poll waits in the previous release's delay queue.
        while not all(any(k.startswith(i.encode()) for k in redis_client.hkeys(stack.prefix + "delay:payload"))
                      for i in waiting):  # fmt: skip
            assert time.monotonic() < deadline, "the previous release's polls never waited in its delay queue"
            time.sleep(0.1)
    finally:
        os.killpg(worker.pid, 15)  # SIGTERM: a warm shutdown, as a deploy does
        worker.wait(30)
        log.close()
    queued = produce_with_previous(old, env, [{"activation_info": {S3: [AUD_B]}, "version": 2, "segment_job": False}])
    assert runtime.runtime().redis.llen(stack.queue) >= 1, "the queued run's message should wait in the broker"
    assert runtime.runtime().redis.hlen(stack.prefix + "delay:payload") >= 1, "polls should wait in the old delay queue"

    stack.wait_worker_ready(stack.start_worker())  # this release
    runs = wait_for_runs(stack, waiting + queued, timeout_s=120)
    assert [r.status for r in runs] == ["succeeded"] * 3, [(r.status, r.error, r.timeline) for r in runs]
    assert runtime.runtime().redis.get(stack.prefix + "ledger:version") == LAYOUT.encode()
    accepted = stack.accepted_posts()
    assert accepted.get(paths.SEGMENT_JOBS) == 2 and accepted.get(paths.EXPORT_JOBS) == 2, accepted
    assert accepted.get(paths.ADHOC_RUN) == 3, accepted
    assert stack.posts().get(paths.ADHOC_RUN) == 3, "no refused or repeated activation attempt"
    # The previous release's quota slots carried over (its segment-job scope was the bare sandbox name), and
    # its segment jobs count against the year too (layout 1 kept no yearly quota).
    used = {u.name: u.used for u in quota_usage()}
    assert used == {"adhoc": 3, "segment_jobs": 2, "segment_jobs_year": 2}, used


def test_runs_in_flight_on_ledger_layout_2_are_lifted_to_layout_3_and_finished(make_stack, tmp_path):
    """Layout 3 moved a record's long fields into a second hash. The layout-2 release starts two runs and
    is stopped while they wait on their segment jobs; its producer then creates a third, still queued.
    This release lifts every record where it meets it and finishes all three, one POST per step."""
    old = previous_release(tmp_path, LAYOUT_2)
    # Segment jobs take ~26 s here: the layout-2 worker is stopped while its runs poll them.
    stack = make_stack(SimulatorConfig(speed=30, seed=23), env={"QUOTA_SEGMENT_JOBS_PER_DAY": "10"})
    env = {**os.environ, **stack.env(), "PYTHONPATH": str(old), "PYTHONUNBUFFERED": "1"}
    log = open(stack.log_dir / "layout2.log", "ab")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aep_activator.workers", "worker", "-Q", stack.queue,
         "--concurrency=2", "--loglevel=INFO", "--without-mingle", "--without-gossip",
         f"--hostname=layout2-{stack.prefix}@%h"],
        cwd=old, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    r = runtime.runtime().redis
    code = (
        "import json, sys\nfrom aep_activator import start_activation\n"
        "print(json.dumps([start_activation(r) for r in json.loads(sys.argv[1])]))"
    )

    def produce(requests: list[dict[str, object]]) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code, json.dumps(requests)], cwd=old, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        return list(json.loads(out.stdout.strip().splitlines()[-1]))

    try:
        deadline = time.monotonic() + 60
        while " ready." not in (stack.log_dir / "layout2.log").read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, "the layout-2 worker did not start"
            time.sleep(0.1)
        waiting = produce([v1(S3, AUD_A), v1(SFTP, AUD_C)])
        deadline = time.monotonic() + 30
        while not all(r.hget(stack.prefix + f"run:{i}", "step") == b"poll_segment_job" for i in waiting):
            assert time.monotonic() < deadline, [r.hgetall(stack.prefix + f"run:{i}") for i in waiting]
            time.sleep(0.1)
    finally:
        os.killpg(worker.pid, 15)  # SIGTERM: a warm shutdown, as a deploy does
        worker.wait(30)
        log.close()
    queued = produce([{"activation_info": {S3: [AUD_B]}, "version": 2, "segment_job": False}])
    for run_id in waiting + queued:
        record = r.hgetall(stack.prefix + f"run:{run_id}")
        assert record[b"v"] == b"2" and b"request" in record, record
    assert all(r.hget(stack.prefix + f"run:{i}", "status") != b"succeeded" for i in waiting), "stopped too late"

    stack.wait_worker_ready(stack.start_worker())  # this release
    runs = wait_for_runs(stack, waiting + queued, timeout_s=120)
    assert [x.status for x in runs] == ["succeeded"] * 3, [(x.status, x.error, x.timeline) for x in runs]
    assert r.get(stack.prefix + "ledger:version") == LAYOUT.encode()
    for run_id in waiting + queued:
        assert r.hget(stack.prefix + f"run:{run_id}", "v") == LAYOUT.encode(), "lifted"
        assert not r.hexists(stack.prefix + f"run:{run_id}", "request")
        assert r.hexists(stack.prefix + f"run:{run_id}:long", "request")
    posts, accepted = stack.posts(), stack.accepted_posts()
    assert posts == accepted, "every POST attempt was accepted: none refused, none repeated"
    assert (accepted.get(paths.SEGMENT_JOBS), accepted.get(paths.EXPORT_JOBS), accepted.get(paths.ADHOC_RUN)) == (
        2, 2, 3), accepted  # fmt: skip
    used = {u.name: u.used for u in quota_usage()}
    assert used == {"adhoc": 3, "segment_jobs": 2, "segment_jobs_year": 2}, used

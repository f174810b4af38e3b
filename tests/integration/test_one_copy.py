"""One importable copy of each project module, in a real worker and in a real producer.

Two copies (``tasks.producer`` beside ``aep_activator.tasks.producer``, ``config.settings`` beside
``aep_activator.config.settings``) would hold two configurations and two exception trees that silently
disagree. The worker is started the way the README documents from the repository root
(``celery -A workers worker``); the producer is the README's snippet in a fresh interpreter. Each
reports its ``sys.modules`` after a run went through it, and no file may be loaded under two names,
except ``workers/__init__.py``: ``celery -A workers`` loads it as ``workers``, and it holds nothing
but a re-export of the one app, so both names give the same object.
"""

from __future__ import annotations

import ast
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from aep_activator.tasks.celery import app
from tests.integration.conftest import EXAMPLE, wait_for_runs
from tests.integration.modules_probe import TASK
from tests.integration.test_readme_producer import run_readme_producer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("aep", "tasks", "config", "aepsim", "devstack", "workers")
ENTRY = frozenset({"workers", "aep_activator.workers"})
"""The one file allowed two names: the repo-root entry module ``celery -A workers`` loads."""


def second_copies(modules: dict[str, str | None]) -> list[list[str]]:
    """Groups of project module names loaded from one file, and project modules under a folder name
    (``tasks.x``). Other packages' aliases (``importlib._bootstrap``) are not ours to judge."""
    by_file: dict[str, list[str]] = defaultdict(list)
    for name, file in modules.items():
        if file and name.split(".")[0] in (*FOLDERS, "aep_activator"):
            by_file[os.path.realpath(file)].append(name)
    found = [sorted(names) for names in by_file.values() if len(names) > 1 and set(names) != ENTRY]
    # A folder's module imported by its folder name, even one without a file of its own.
    bare = sorted(n for n in modules if n.split(".")[0] in FOLDERS and n != "workers")
    if bare:
        found.append(bare)
    return found


def test_the_copy_finder_notices_a_module_imported_under_two_names() -> None:
    modules = {
        "aep_activator.tasks.producer": "/x/aep_activator/tasks/producer.py",
        "tasks.producer": "/x/tasks/producer.py",
        "aep_activator.config.settings": "/x/config/settings.py",
        "config.settings": "/x/config/settings.py",
        "workers": "/x/workers/__init__.py",
        "aep_activator.workers": "/x/workers/__init__.py",
    }
    assert second_copies(modules) == [
        ["aep_activator.config.settings", "config.settings"],
        ["config.settings", "tasks.producer"],
    ]
    assert second_copies({"workers": "/x/workers/__init__.py", "aep_activator.workers": "/x/w.py"}) == []


def test_the_repo_root_entry_module_holds_nothing_but_the_app_and_its_logging_hooks() -> None:
    tree = ast.parse((ROOT / "workers" / "__init__.py").read_text(encoding="utf-8"))
    imported = {
        (node.module, alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {
        ("celery.signals", "after_setup_logger"),
        ("celery.signals", "after_setup_task_logger"),
        ("celery.signals", "celeryd_init"),
        ("aep_activator.tasks.celery", "app"),
        ("aep_activator.workers.logs", "celery_logging"),
        ("aep_activator.workers.logs", "json_worker_start"),
    }
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == []


def test_a_worker_started_as_celery_a_workers_and_a_producer_each_hold_one_copy_of_every_module(make_stack, tmp_path):
    stack = make_stack()
    worker = stack.start_worker(
        app="workers", concurrency=1, extra_args=("--include", "tests.integration.modules_probe")
    )
    stack.wait_worker_ready(worker)
    produced = run_readme_producer(stack, json.loads((ROOT / EXAMPLE).read_text()), tmp_path)
    (run,) = wait_for_runs(stack, [produced["run_id"]])
    assert run.status == "succeeded", (run.error, run.timeline)

    # The one pool process ran every step of the run; now it reports what it holds.
    in_worker = app.send_task(TASK, queue=stack.queue).get(timeout=30)
    assert "aep_activator.tasks.runner" in in_worker and "aep_activator.aep.api.client" in in_worker
    assert "workers" in in_worker, "the worker loaded the repo-root entry module, as celery -A workers does"
    assert second_copies(in_worker) == []

    in_producer = produced["modules"]
    assert "aep_activator.tasks.producer" in in_producer
    assert second_copies(in_producer) == []
    assert "workers" not in in_producer

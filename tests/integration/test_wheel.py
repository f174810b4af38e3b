"""The built wheel, installed into a fresh venv, next to a service's own ``config/`` and ``tasks.py``.

The wheel must hold one import name (``aep_activator``), with the symlinked folders resolved into real
files, each module exactly once. Installed into a fresh venv (its dependencies resolved by pip), in a
folder laid out like a producer service (cookiecutter-django's top-level ``config/`` package and a
``tasks.py``), the README's producer snippet starts a run, and the README's worker command
(``aep-activator worker``) run from that same folder takes it to ``succeeded``: neither side shadows
the other, and neither process holds a second copy of any module.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aep_activator.devstack.stack import Stack
from tests.integration.conftest import EXAMPLE, wait_for_runs
from tests.integration.modules_probe import TASK
from tests.integration.test_one_copy import FOLDERS, second_copies
from tests.integration.test_readme_producer import README_PRODUCER, producer_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

SERVICE_CONFIG = '"""A producer service\'s own settings package (cookiecutter-django\'s layout)."""\nNAME = "service"\n'
SERVICE_TASKS = '"""A producer service\'s own tasks module."""\nOWNER = "service"\n'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def build_wheel(out: Path) -> Path:
    """``pip wheel`` of a clean copy of the working tree (symlinks kept as links): setuptools reuses a
    ``build/`` folder in the source tree, whose leftovers (a module since moved) would enter the wheel."""
    src = out / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(out), "-q",
         "--disable-pip-version-check"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("aep_activator-*.whl")
    return wheel


def repo_modules() -> set[str]:
    """Every module file of the project, named as the wheel must hold it."""
    names = {"aep_activator/__init__.py"}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                names.add(f"aep_activator/{path.relative_to(ROOT)}")
    return names


def fresh_venv(where: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True, timeout=120)
    python = where / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def start_installed_worker(stack: Stack, venv: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """The README's ``aep-activator worker``, from the venv, in the service's folder, with the service's
    folder on the path (as where a service runs the worker inside its own project)."""
    env = {**producer_env(stack), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(cwd)}
    log = open(stack.log_dir / "wheel-worker.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(venv / "bin" / "aep-activator"), "worker", "--concurrency", "1", "--",
         f"--hostname=wheel-{stack.prefix.rstrip(':')}@%h", "--without-mingle", "--without-gossip",
         "--include", "probe"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    stack.workers.append(proc)  # stopped with the stack
    return proc


def test_the_wheel_holds_one_import_name_with_every_module_once_as_a_real_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert len(names) == len(set(names))
    assert {n.split("/")[0] for n in names} == {"aep_activator", "aep_activator-0.1.0.dist-info"}
    links = [i.filename for i in infos if stat.S_ISLNK(i.external_attr >> 16)]
    assert links == []
    assert {n for n in names if n.endswith(".py")} == repo_modules()
    assert "aep_activator/aep/coordination/lua/run_create.lua" in names
    assert "aep_activator/config/schedules.toml" in names


def test_a_wheel_installed_beside_a_services_config_and_tasks_starts_a_run_a_worker_takes_to_succeeded(
    make_stack, tmp_path, wheel
):
    venv = tmp_path / "venv"
    python = fresh_venv(venv, wheel)
    service = tmp_path / "service"
    (service / "config").mkdir(parents=True)
    (service / "config" / "__init__.py").write_text(SERVICE_CONFIG)
    (service / "tasks.py").write_text(SERVICE_TASKS)
    shutil.copy(ROOT / "tests" / "integration" / "modules_probe.py", service / "probe.py")

    stack = make_stack()
    stack.wait_worker_ready(start_installed_worker(stack, venv, service))
    request = json.loads((ROOT / EXAMPLE).read_text())
    snippet = "import config, tasks\nassert config.NAME == 'service' and tasks.OWNER == 'service'\n" + README_PRODUCER
    done = subprocess.run(
        [str(python), "-c", snippet], input=json.dumps(request), cwd=service, env=producer_env(stack),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    produced = json.loads(done.stdout.strip().splitlines()[-1])
    (run,) = wait_for_runs(stack, [produced["run_id"]])
    assert run.status == "succeeded", (run.error, run.timeline)

    site = os.path.realpath(venv)
    for where, modules in (("producer", produced["modules"]),
                           ("worker", stack_app_report(stack))):  # fmt: skip
        assert os.path.realpath(modules["aep_activator"]).startswith(site), where
        assert os.path.realpath(modules["config"]) == str((service / "config" / "__init__.py").resolve()), where
        assert second_copies({n: f for n, f in modules.items() if n not in ("config", "tasks")}) == [], where


def stack_app_report(stack: Stack) -> dict[str, str | None]:
    """The worker's sys.modules, after it imported the service's own ``config`` and ``tasks`` (as a
    service's task would): they stay the service's, and the installed code is not shadowed by them."""
    from aep_activator.tasks.celery import app

    modules: dict[str, str | None] = app.send_task(TASK, kwargs={"also": ["config", "tasks"]},
                                                   queue=stack.queue).get(timeout=30)  # fmt: skip
    return modules

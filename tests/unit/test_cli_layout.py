"""``workers/cli/`` is a package without a cycle, as rq's ``cli/`` is, and loading it reads no settings.

- ``__init__`` exports ``main`` from ``group``; ``group`` registers the command modules' commands;
  the command modules import only ``common``, never each other; ``common`` imports no CLI module.
- Heavy things (the producer and tasks, the app, ``devstack``, the simulator, beat and Flower) are
  imported inside command functions only, so ``aep-activator --help`` needs no working environment.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import click

from aep_activator.workers.cli import dev, group, inspecting, operating, producing, watching

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "workers" / "cli"
PACKAGE = "aep_activator.workers.cli"
COMMAND_MODULES = {"producing": producing, "watching": watching, "operating": operating, "inspecting": inspecting,
                   "dev": dev}  # fmt: skip
# Imported only inside a function: each would load Celery's app, Redis clients, Tornado or dev infrastructure.
LAZY_ONLY = (
    "aep_activator.tasks",
    "aep_activator.devstack",
    "aep_activator.aepsim",
    "aep_activator.workers.beat",
    "aep_activator.workers.flower",
    "aep_activator.workers.checks",
    "celery",
    "redbeat",
    "flower",
)
INVALID_ENV = {"REDIS_URL": "nonsense", "AEP_ORG_ID": "", "VISIBILITY_TIMEOUT_S": "-1"}


def imported_modules(node: ast.AST) -> list[str]:
    """Absolute module names an import statement names (``from a import b`` counts as ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        assert node.level == 0, "relative import: use the absolute aep_activator name"
        assert node.module is not None
        return [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return []


def cli_imports(module: str) -> set[str]:
    """The ``workers/cli`` modules ``module`` imports, by short name (``common``, ``producing``, …)."""
    tree = ast.parse((CLI / f"{module}.py").read_text(encoding="utf-8"))
    names = {n for node in ast.walk(tree) for n in imported_modules(node)}
    return {n.removeprefix(f"{PACKAGE}.").split(".")[0] for n in names if n.startswith(f"{PACKAGE}.")}


def module_level_imports(source: str) -> list[str]:
    """Names imported outside any function body of ``source`` (``if TYPE_CHECKING:`` blocks excluded)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        found.extend(imported_modules(node))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def heavy(names: list[str]) -> list[str]:
    return [n for n in names if any(n == h or n.startswith(f"{h}.") for h in LAZY_ONLY)]


def all_modules() -> list[str]:
    return sorted(p.stem for p in CLI.glob("*.py"))


def test_the_package_holds_the_init_the_group_the_common_module_and_the_command_modules() -> None:
    assert all_modules() == sorted(["__init__", "group", "common", *COMMAND_MODULES])


def test_a_command_module_imports_common_only_and_never_another_command_module() -> None:
    assert {m: cli_imports(m) for m in COMMAND_MODULES} == {m: {"common"} for m in COMMAND_MODULES}


def test_common_imports_no_cli_module_the_group_imports_the_command_modules_and_init_only_the_group() -> None:
    assert cli_imports("common") == set()
    assert cli_imports("group") == set(COMMAND_MODULES)
    assert cli_imports("__init__") == {"group"}


def test_heavy_modules_and_devstack_are_imported_only_inside_functions() -> None:
    top_level = {m: module_level_imports((CLI / f"{m}.py").read_text(encoding="utf-8")) for m in all_modules()}
    assert {m: heavy(names) for m, names in top_level.items() if heavy(names)} == {}


def test_the_layout_check_catches_a_module_level_devstack_import_and_spares_a_lazy_one() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from aep_activator.devstack.demo import run_demo\n"
        "if TYPE_CHECKING:\n    from aep_activator.tasks.producer import get_run\n"
        "def command():\n    import celery\n    from aep_activator.devstack import stack\n"
    )
    found = heavy(module_level_imports(source))
    assert found == ["aep_activator.devstack.demo", "aep_activator.devstack.demo.run_demo"]
    assert heavy(["celeryish", "flowerpot", "aep_activator.tasksets"]) == []


def test_every_command_a_command_module_defines_is_registered_under_its_name() -> None:
    for module in COMMAND_MODULES.values():
        commands = {c for c in vars(module).values() if isinstance(c, click.Command)}
        subcommands = {c for g in commands if isinstance(g, click.Group) for c in g.commands.values()}
        assert commands - subcommands == set(module.COMMANDS), module.__name__
    registered = {c.name: c for module in COMMAND_MODULES.values() for c in module.COMMANDS}
    assert group.main.commands == registered
    assert set(registered) == {
        "run", "status", "runs", "cancel", "resume", "quota", "reconcile",
        "worker", "beat", "flower", "schedules", "config", "api", "api-key",
        "simulator", "demo",
    }


def test_importing_the_cli_with_an_invalid_environment_reads_no_settings_and_loads_no_devstack(
    tmp_path: Path,
) -> None:
    probe = (
        "import sys\n"
        "import aep_activator.workers, aep_activator.workers.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('aep_activator.devstack', 'aep_activator.aepsim')))\n"
        "from aep_activator.config.settings import get_settings\n"  # what tasks.runtime reads, once
        "from aep_activator.tasks.celery import app\n"
        "print(get_settings.cache_info().currsize, app.configured, loaded)\n"
    )
    env = {**os.environ, **INVALID_ENV}
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "False", "[]"]

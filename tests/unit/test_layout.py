"""Dependencies point one way: config <- aep.api <- aep.coordination / aep.pipeline <- tasks <- workers.

Every import statement of every project module is read with ``ast`` (an import inside a function
counts too) and mapped to the layer it names, by its full ``aep_activator.`` name. Each layer's
allowed layers are pinned below, and every exception is named with its reason. The simulator's own
arrows (it imports only ``aep.api.models`` and ``aep.api.paths``) are pinned in test_aepsim_layout.py,
the CLI's in test_cli_layout.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("config", "aep", "tasks", "workers", "aepsim", "devstack")
LAYERS = ("config", "aep.api", "aep.coordination", "aep.pipeline", "tasks", "workers", "aepsim", "devstack")

ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "aep.api": set(),
    "aep.coordination": set(),  # Redis state: knows neither AEP nor Celery
    "aep.pipeline": {"config", "aep.api", "aep.coordination"},
    "tasks": {"config", "aep.api", "aep.coordination", "aep.pipeline"},
    "workers": {"config", "aep.api", "aep.coordination", "aep.pipeline", "tasks", "aepsim", "devstack"},
    "devstack": {"config", "aep.api", "aep.coordination", "aep.pipeline", "tasks", "aepsim", "workers"},
}
"""The layers each layer may import (its own always). ``aepsim``: see test_aepsim_layout.py."""

EXCEPTIONS: set[tuple[str, str]] = set()
"""(file, module) imports allowed against the arrows, each with its reason. None today: the IMS token
cache, which aep/api/auth.py once kept in Redis itself, is aep/coordination/tokens.py, handed in."""

NARROW = {
    # Of the workers, only the dev commands start the simulator and the local stack (inside a command:
    # test_cli_layout.py).
    ("workers", "devstack"): {"workers/cli/dev.py"},
    ("workers", "aepsim"): {"workers/cli/dev.py"},
    # The demo starts Flower and mints a one-off console key with the workers' own helpers.
    ("devstack", "workers"): {"devstack/demo.py"},
}
"""(importer layer, imported layer): the only files of the importer that may import it."""

FRAMEWORKS = {"celery", "kombu", "redbeat", "flower", "tornado", "fastapi", "uvicorn", "starlette"}


def layer_of_file(rel: str) -> str:
    dotted = rel.removesuffix(".py").replace("/", ".")
    return next((layer for layer in LAYERS if dotted == layer or dotted.startswith(layer + ".")), dotted.split(".")[0])


def layer_of_module(name: str) -> str | None:
    """The layer an ``aep_activator.…`` module belongs to; None for a third-party module or the root."""
    if not name.startswith("aep_activator."):
        return None
    rest = name.removeprefix("aep_activator.")
    if rest.split(".")[0] not in FOLDERS:
        return None  # the package root (``aep_activator.canonical``, the guard every package runs)
    return next((layer for layer in LAYERS if rest == layer or rest.startswith(layer + ".")), rest.split(".")[0])


def imported(source: str) -> set[str]:
    """Every module an import statement names (``from a import b``: ``a``, and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, "project modules use absolute imports"
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def project_files() -> dict[str, set[str]]:
    return {
        str(p.relative_to(ROOT)): imported(p.read_text(encoding="utf-8"))
        for folder in FOLDERS
        for p in (ROOT / folder).rglob("*.py")
    }


def violations(files: dict[str, set[str]]) -> list[str]:
    found = []
    for rel, names in sorted(files.items()):
        src = layer_of_file(rel)
        if src not in ALLOWED:
            continue
        for name in sorted(names):
            dst = layer_of_module(name)
            if dst is None or dst == src or (rel, name) in EXCEPTIONS:
                continue
            if any((rel, e) in EXCEPTIONS for e in _parents(name)):
                continue
            if dst not in ALLOWED[src]:
                found.append(f"{rel} ({src}) imports {name} ({dst})")
            elif (only := NARROW.get((src, dst))) is not None and rel not in only:
                found.append(f"{rel} imports {name}: of {src}, only {sorted(only)} may import {dst}")
    return found


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def test_every_layer_imports_only_the_layers_below_it() -> None:
    assert violations(project_files()) == []


def test_the_arrow_reader_notices_an_import_against_the_arrows() -> None:
    files = {
        "aep/api/client.py": {"aep_activator.aep.pipeline.plan", "requests"},
        "aep/coordination/quota.py": {"aep_activator.aep.api.errors"},
        "tasks/producer.py": {"aep_activator.workers.cli"},
        "tasks/runner.py": {"aep_activator.aep.pipeline.plan", "aep_activator.config.settings"},
        "workers/beat.py": {"aep_activator.devstack.stack"},
        "aep/api/auth.py": {"aep_activator.aep.coordination.scripts"},
    }
    assert violations(files) == [
        "aep/api/auth.py (aep.api) imports aep_activator.aep.coordination.scripts (aep.coordination)",
        "aep/api/client.py (aep.api) imports aep_activator.aep.pipeline.plan (aep.pipeline)",
        "aep/coordination/quota.py (aep.coordination) imports aep_activator.aep.api.errors (aep.api)",
        "tasks/producer.py (tasks) imports aep_activator.workers.cli (workers)",
        "workers/beat.py imports aep_activator.devstack.stack: of workers, only ['workers/cli/dev.py'] may import "
        "devstack",
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("config", FRAMEWORKS | {"redis", "requests"}),
        ("aep", FRAMEWORKS),
        ("aep/api", FRAMEWORKS | {"redis"}),  # talks to AEP only: Redis state is the coordination layer's
        ("aep/coordination", FRAMEWORKS | {"requests"}),
        ("tasks", {"redbeat", "flower", "tornado", "fastapi", "uvicorn", "starlette"}),
    ],
)
def test_a_package_imports_no_framework_of_the_layers_above_it(package: str, forbidden: set[str]) -> None:
    offenders = {
        rel: sorted(top)
        for rel, names in project_files().items()
        if rel.startswith(package + "/") and (top := {n.split(".")[0] for n in names} & forbidden)
    }
    assert not offenders


def test_every_project_import_uses_the_one_import_name() -> None:
    bare = {
        rel: sorted(n for n in names if n.split(".")[0] in FOLDERS)
        for rel, names in project_files().items()
        if any(n.split(".")[0] in FOLDERS for n in names)
    }
    assert bare == {}


def test_no_module_under_the_layers_is_over_300_lines() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for folder in ("aep", "tasks", "workers", "aepsim", "devstack")
        for p in (ROOT / folder).rglob("*.py")
    }
    assert {rel: n for rel, n in sizes.items() if n > 300} == {}


def test_nothing_outside_config_reads_the_environment_directly() -> None:
    # The entry points that start processes pass environments on; checks.py reads TZ, not a setting.
    allowed = {
        "config/settings.py",
        "devstack/demo.py",
        "devstack/stack.py",
        "devstack/embedded_redis.py",
        "workers/checks.py",
    }
    offenders = []
    for package in FOLDERS:
        for path in (ROOT / package).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            if "os.environ" in path.read_text(encoding="utf-8") and rel not in allowed:
                offenders.append(rel)
    assert not offenders

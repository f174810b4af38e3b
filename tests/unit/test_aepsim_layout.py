"""The simulator's arrows: aepsim imports only the shared wire models and paths from the project; the
pure state imports no layer above it, the dispatch no adapter, and only the Tornado adapter imports
Tornado. Imports are read with ``ast``, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AEPSIM = ROOT / "aepsim"

SHARED = {"aep_activator.aep.api.models", "aep_activator.aep.api.paths"}
"""What aepsim may import from the rest of the project."""

GUARD = ("aepsim/__init__.py", "aep_activator.canonical")
"""The one exception: every package's __init__ refuses a second import name with aep_activator.canonical."""


def imported_names(source: str) -> set[str]:
    """Every module an import statement names, with ``from a import b`` as both ``a`` and ``a.b``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "aepsim uses absolute imports only"
            module = node.module or ""
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imported_names(p.read_text(encoding="utf-8")) for p in AEPSIM.rglob("*.py")}


def project_imports_outside_aepsim(rel: str, names: set[str]) -> set[str]:
    """Imports of project modules that are neither aepsim's own nor the shared models and paths."""
    out = set()
    for name in names:
        if not name.startswith("aep_activator") or name.startswith("aep_activator.aepsim"):
            continue
        if name in SHARED or any(name.startswith(s + ".") for s in SHARED):
            continue
        if name == "aep_activator.aep.api":
            continue  # the package part of `from aep_activator.aep.api import paths`
        if (rel, name) == GUARD or (rel == GUARD[0] and name == "aep_activator"):
            continue
        out.add(name)
    return out


def test_aepsim_imports_nothing_of_the_project_but_the_shared_models_and_paths() -> None:
    offenders = {rel: sorted(project_imports_outside_aepsim(rel, names)) for rel, names in modules().items()}
    assert {rel: found for rel, found in offenders.items() if found} == {}


def test_only_the_tornado_adapter_imports_tornado() -> None:
    users = sorted(rel for rel, names in modules().items() if any(n.split(".")[0] == "tornado" for n in names))
    assert users == ["aepsim/http/tornado_server.py"]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("aepsim/state/", ("aep_activator.aepsim.api", "aep_activator.aepsim.http", "aep_activator.aepsim.testing")),
        ("aepsim/api/", ("aep_activator.aepsim.http", "aep_activator.aepsim.testing")),
    ],
)
def test_a_simulator_layer_does_not_import_the_layers_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = {
        rel: sorted(n for n in names if n.startswith(forbidden))
        for rel, names in modules().items()
        if rel.startswith(layer) and any(n.startswith(forbidden) for n in names)
    }
    assert not offenders


def test_the_state_and_the_dispatch_use_no_third_party_package_but_pydantic() -> None:
    stdlib = __import__("sys").stdlib_module_names
    offenders = {}
    for rel, names in modules().items():
        if not rel.startswith(("aepsim/state/", "aepsim/api/")):
            continue
        third = {n.split(".")[0] for n in names} - set(stdlib) - {"aep_activator", "pydantic", "__future__", ""}
        if third:
            offenders[rel] = sorted(third)
    assert not offenders


def test_no_simulator_module_is_over_300_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in AEPSIM.rglob("*.py")}
    assert {rel: n for rel, n in sizes.items() if n > 300} == {}


def test_the_import_reader_notices_a_forbidden_import() -> None:
    names = imported_names("from aep_activator.aep.api.client import AEPClient\nimport tornado.web\n")
    assert project_imports_outside_aepsim("aepsim/state/x.py", names) == {
        "aep_activator.aep.api.client",
        "aep_activator.aep.api.client.AEPClient",
    }
    assert "tornado.web" in names
    allowed = imported_names("from aep_activator.aep.api import paths\nfrom aep_activator.aep.api.models import X\n")
    assert project_imports_outside_aepsim("aepsim/api/x.py", allowed) == set()

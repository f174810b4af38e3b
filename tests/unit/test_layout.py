"""Dependencies point one way: config and aep import no Celery; tasks never import workers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(package: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("config", {"celery", "kombu", "aep", "tasks", "workers"}),
        ("aep", {"celery", "kombu", "tasks", "workers"}),
        ("tasks", {"workers"}),
    ],
)
def test_a_package_does_not_import_the_layers_above_it(package: str, forbidden: set[str]) -> None:
    offenders = {f: sorted(names & forbidden) for f, names in imports_of(package).items() if names & forbidden}
    assert not offenders


def test_nothing_outside_config_reads_the_environment_directly() -> None:
    # The entry points that start processes pass environments on; checks.py reads TZ, not a setting.
    allowed = {
        "config/settings.py",
        "workers/demo.py",
        "workers/stack.py",
        "aep/embedded_redis.py",
        "workers/checks.py",
    }
    offenders = []
    for package in ("aep", "tasks", "workers", "config"):
        for path in (ROOT / package).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            if "os.environ" in path.read_text(encoding="utf-8") and rel not in allowed:
                offenders.append(rel)
    assert not offenders

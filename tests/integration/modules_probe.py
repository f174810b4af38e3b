"""Loaded into a test's worker with ``celery worker --include tests.integration.modules_probe``: a task that
answers which modules the executing process holds, and from which file (for tests/integration/test_one_copy.py).

It registers itself on the one app (``aep_activator.tasks.celery``) and imports nothing else of the project.
"""

from __future__ import annotations

import importlib
import sys

from aep_activator.tasks.celery import app

TASK = "test.loaded_modules"


def loaded_modules() -> dict[str, str | None]:
    """Every module in this process's ``sys.modules`` and its file (None for a namespace or built-in)."""
    return {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}


@app.task(name=TASK, acks_late=False)
def report(also: tuple[str, ...] = ()) -> dict[str, str | None]:
    """The modules this process holds, after importing ``also`` (as a service's own task would)."""
    for name in also:
        importlib.import_module(name)
    return loaded_modules()

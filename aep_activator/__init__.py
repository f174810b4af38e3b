"""aep-activator: AEP ad-hoc activation on Celery + Redis. The one import name of the installed code.

    from aep_activator import ActivationRequest, start_activation

The repository keeps the architecture's folders at its top level (``config/``, ``aep/``, ``tasks/``,
``workers/``, ``aepsim/``, ``devstack/``); inside this package each is a symlink to that folder, so
the installed wheel holds exactly one copy of every module, under ``aep_activator.*``, and no
top-level ``config`` or ``tasks`` can shadow (or be shadowed by) a producer's own. Importing this
package reads no settings: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aep_activator.aep.pipeline.request import ActivationRequest
    from aep_activator.tasks.celery import app
    from aep_activator.tasks.producer import InvalidRequest, cancel_run, get_run, resume_run, start_activation

_EXPORTS = {
    "ActivationRequest": "aep_activator.aep.pipeline.request",
    "InvalidRequest": "aep_activator.tasks.producer",
    "cancel_run": "aep_activator.tasks.producer",
    "get_run": "aep_activator.tasks.producer",
    "resume_run": "aep_activator.tasks.producer",
    "start_activation": "aep_activator.tasks.producer",
    "app": "aep_activator.tasks.celery",
}

__all__ = ["ActivationRequest", "InvalidRequest", "app", "cancel_run", "get_run", "resume_run", "start_activation"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aep_activator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def canonical(module_name: str) -> None:
    """Refuse to run a project package imported under a second name (``tasks`` instead of
    ``aep_activator.tasks``): two copies would hold two configurations and two exception trees."""
    if not module_name.startswith("aep_activator."):
        raise ImportError(
            f"'{module_name}' is aep-activator code imported under its folder name; import "
            f"'aep_activator.{module_name}' instead (the folders are mapped into the one package aep_activator)"
        )

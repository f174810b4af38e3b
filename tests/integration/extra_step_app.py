"""The worker app of a plan with a seventh step: ``celery -A tests.integration.extra_step_app worker``.

Adding a step is one plan entry plus its domain function (tests/integration/extra_step.py), and
nothing else: the Celery task, its name, its successor, which step finishes a run, the fence and the
delay queue all come from the plan. The two lines below stand in for editing ``PLAN`` in
aep/pipeline/plan.py: the process that loads this module runs the extended plan and has a task for
each of its steps. Only a worker loads it (importing it switches the importing process's plan).
"""

from __future__ import annotations

from aep_activator.tasks import runtime
from aep_activator.tasks.celery import app
from aep_activator.tasks.steps import register
from tests.integration.extra_step import EXTENDED

runtime.use_plan(EXTENDED)
register(app, EXTENDED)

__all__ = ["app"]

"""The plan: the one ordered list of the chain's steps. Nothing else spells a step name.

From :data:`PLAN` come the Celery tasks and their names (``activation.<name>``, tasks/steps.py), the
steps a request runs (:meth:`Plan.steps_for`: ``version`` and ``segment_job`` decide), which step a
run starts and finishes at (the first and last of those), the successor of each, which create step a
poll whose AEP job died restarts at (:attr:`Step.recreate`, for ``resume``), and what ``cancel``
DELETEs at AEP (:attr:`Step.cancel`).

Adding a step is one :class:`Step` here plus its domain function (tests/integration/test_plan.py
runs a plan with an extra step through a real worker). Runs in flight keep the meaning of what Redis
holds: a run record names its current step by *name* (not by position), so inserting a step changes
no stored run; a renamed step must keep answering to its old name until no run is in flight at it.
Layout-1 records stored a step *index*; :data:`LAYOUT1_STEPS` maps those indexes to names for the
upgrade (tasks/upgrade.py), and is never to be changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.steps import adhoc, export_job, segment_job
from aep_activator.aep.pipeline.steps.base import CancelFn, StepFn

TASK_PREFIX = "activation."
TASK_START = "activation.start"
"""The public task other services may ``send_task``: an activation request as kwargs."""
TASK_CALLBACK = "activation.callback"
"""POSTs a run's terminal status to its request's ``callback_url`` (tasks/callbacks.py); not a step."""


def _always(_: ActivationRequest) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    """One step of the chain.

    ``run`` checks or creates once and returns an outcome (aep/pipeline/steps/base.py). ``applies``
    says whether a request runs this step. A poll names its ``recreate`` step (the create step to
    restart at when its AEP job failed or outlived its deadline) and the record fields that restart
    forgets; ``cancel`` DELETEs the step's in-flight AEP job when the run is cancelled there.
    """

    name: str
    run: StepFn
    applies: Callable[[ActivationRequest], bool] = _always
    recreate: str | None = None
    forget: tuple[str, ...] = ()
    cancel: CancelFn | None = None
    posts: bool = False
    """The step POSTs (and may spend a quota): it records an intent first."""

    @property
    def task_name(self) -> str:
        return TASK_PREFIX + self.name


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    _by_name: dict[str, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique: {names}")
        by_name = {s.name: s for s in self.steps}
        for s in self.steps:
            if s.recreate is not None and s.recreate not in by_name:
                raise ValueError(f"step {s.name}: recreate names unknown step {s.recreate!r}")
        object.__setattr__(self, "_by_name", by_name)

    def __getitem__(self, name: str) -> Step:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Step | None:
        return self._by_name.get(name)

    def steps_for(self, request: ActivationRequest) -> list[Step]:
        """The steps ``request`` runs, in order."""
        return [s for s in self.steps if s.applies(request)]

    def first(self, request: ActivationRequest) -> Step:
        return self.steps_for(request)[0]

    def after(self, request: ActivationRequest, name: str) -> Step | None:
        """The step after ``name`` for ``request``; None when ``name`` finishes the run."""
        steps = self.steps_for(request)
        names = [s.name for s in steps]
        i = names.index(name)
        return steps[i + 1] if i + 1 < len(steps) else None

    def with_step(self, step: Step, *, after: str) -> Plan:
        """This plan with ``step`` inserted after the step named ``after``."""
        names = [s.name for s in self.steps]
        i = names.index(after)
        return Plan((*self.steps[: i + 1], step, *self.steps[i + 1 :]))


PLAN = Plan(
    (
        Step("create_segment_job", segment_job.create, applies=lambda r: r.segment_job, posts=True),
        Step(
            "poll_segment_job",
            segment_job.poll,
            applies=lambda r: r.segment_job,
            recreate="create_segment_job",
            forget=("segment_job_id",),
            cancel=segment_job.cancel,
        ),
        Step("create_export_job", export_job.create, applies=lambda r: r.version == 1, posts=True),
        Step(
            "poll_export_job",
            export_job.poll,
            applies=lambda r: r.version == 1,
            recreate="create_export_job",
            forget=("export_job_id",),
            cancel=export_job.cancel,
        ),
        Step("run_activation", adhoc.run, posts=True),
        Step("poll_activation", adhoc.poll, recreate="run_activation", forget=("flow_runs",)),
    )
)

LAYOUT1_STEPS = (
    "create_segment_job",
    "poll_segment_job",
    "create_export_job",
    "poll_export_job",
    "run_activation",
    "poll_activation",
)
"""Layout 1 (before the run ledger carried every run) fenced steps by these indexes: never change."""

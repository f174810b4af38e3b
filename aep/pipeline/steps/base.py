"""What every step shares: its context, its outcomes, and the guarded POST.

A step is a function ``(ctx) -> Done | Wait`` that checks or creates once and never sleeps; it may
raise an ``AEPError`` that says what to do next (tasks/runner.py turns outcomes and errors into the
run's next carrier). It reads the run as the execution found it (``ctx.run``) and writes nothing
itself except through ``ctx.execution``: the POST intent (with its quota slots), its refund on proof
of non-acceptance, and the claim of an AEP job it adopts. Everything else it wants written travels
in its outcome and is written when the execution leaves, together with the next carrier.

**Exactly-once POSTs** (STYLE.md §6): a create step with no AEP id and no intent records an intent
and spends the POST's quota slots in one atomic write, then POSTs. An answer settles it (the id, or
a refusal that refunds the slots). No answer (a timeout, a 5xx, a dead worker) leaves the intent: the
next execution only *looks* (looks.py) and adopts what AEP created; it POSTs again only once AEP's
own lists prove that the first POST was not accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from aep_activator.aep.api.client import AEPClient
from aep_activator.aep.api.errors import QuotaExhausted
from aep_activator.aep.coordination.durations import DurationSummary
from aep_activator.aep.coordination.locks import AudienceLocks
from aep_activator.aep.coordination.quota import QuotaLedger, QuotaSpec
from aep_activator.aep.coordination.runs import Event, IntentResult, RunRecord
from aep_activator.aep.pipeline.backoff import PollSchedule
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.scopes import Quota, QuotaLimits, specs
from aep_activator.aep.pipeline.steps.dataflows import DataflowCache


@dataclass(frozen=True)
class StepConfig:
    org_id: str
    client_id: str
    """Our OAuth client id: AEP records it as a flow run's ``createdClient``."""
    sandbox: str | None
    """The default sandbox (``AEP_SANDBOX_NAME``); a request may name another."""
    segment_poll: PollSchedule
    export_poll: PollSchedule
    activation_poll: PollSchedule
    poll_jitter: float
    quotas: QuotaLimits
    audience_lock_ttl_s: float
    look_settle_s: float
    """How long after a POST whose answer was lost AEP's lists must still not show its job before
    the step may POST again (the proof of non-acceptance, looks.py)."""
    clock_skew_s: float = 30.0
    """How far AEP's clock may be behind Redis's when matching a job to the intent we recorded."""
    wait_deadline_s: float = 6 * 3600.0
    """How long a run may wait for audiences held by others (our runs or AEP's) before it fails."""
    look_max_pages: int = 50


class Execution(Protocol):
    """What a step may write while it runs: bound to the execution's lease (tasks/runner.py)."""

    def now(self) -> float:
        """The server's clock (Redis TIME at entry, plus the time elapsed since)."""
        ...

    def intent(self, step: str, quotas: Sequence[QuotaSpec]) -> IntentResult:
        """Record the intent to POST and spend ``quotas`` (one slot each), all or nothing.

        Returns verdict ``ok`` (POST now) or ``quota`` (a window is full: nothing written). Raises
        ``LeaseLost`` when this execution no longer holds the run and ``RunCancelled`` when a cancel began.
        """
        ...

    def in_turn(self, quotas: Sequence[QuotaSpec]) -> bool:
        """Whether this run could spend ``quotas`` now (a read; ``intent`` decides)."""
        ...

    def unintent(self, step: str) -> None:
        """AEP demonstrably did not accept ``step``'s POST: forget the intent, refund its slots."""
        ...

    def claim(self, kind: str, aep_id: str) -> bool:
        """Make this run the owner of an AEP job it is about to adopt; False if another run owns it."""
        ...

    def owned_by_other(self, kind: str, aep_id: str) -> bool:
        """Another run created or adopted this AEP job: it cannot be ours."""
        ...


class RunCancelled(RuntimeError):
    """A cancel began: the step must not POST."""


@dataclass
class StepContext:
    client: AEPClient
    config: StepConfig
    run: RunRecord
    request: ActivationRequest
    step: str
    locks: AudienceLocks
    quotas: QuotaLedger
    execution: Execution
    durations: DurationSummary | None = None
    """Recent job durations (adaptive polls, ``POLL_ADAPTIVE``); None: the geometric schedule only."""
    min_samples: int = 8
    """Durations of a kind that must have been seen before its polls adapt (``POLL_SUMMARY_MIN``)."""
    dataflows: DataflowCache | None = None
    """What each dataflow maps, kept for a minute by this process (the preflight); None: read it every time."""

    @property
    def attempt(self) -> int:
        return self.run.attempt

    def now(self) -> float:
        return self.execution.now()

    @property
    def sandbox(self) -> str | None:
        """The run's sandbox (its request's, else the deployment's default)."""
        return self.request.sandbox or self.config.sandbox

    def quota_specs(self, quota: Quota) -> list[QuotaSpec]:
        return specs(quota, self.config.quotas, org_id=self.config.org_id, sandbox=self.sandbox,
                     schedule=self.request.from_schedule)  # fmt: skip


class WaitKind(StrEnum):
    AEP = "aep"  # an AEP job or flow run is still running
    LOOK = "look"  # looking for the job of a POST whose answer was lost
    QUOTA = "quota"  # a quota window is used up
    AUDIENCE = "audience"  # another run of ours holds an audience
    CONFLICT = "conflict"  # AEP runs something else on an audience ("Run already going on")
    RETRY = "retry"  # a transient error; retried with backoff
    RATE_LIMIT = "rate_limit"  # AEP asked us to slow down (429, Retry-After)


WAITING_ON_US = frozenset({WaitKind.QUOTA, WaitKind.AUDIENCE, WaitKind.CONFLICT})
"""Waits that make the run ``waiting`` (on us or on other runs) rather than ``running`` (on AEP)."""


@dataclass(frozen=True)
class Done:
    """The step is done: go on to the next step (or finish the run)."""

    result: dict[str, Any]
    set: dict[str, Any] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    claims: tuple[tuple[str, str], ...] = ()
    settle: str = ""
    """The step whose POST outcome became known (accepted): its spent slots stop being pending."""
    observed: tuple[str, float] | None = None
    """A finished AEP job's kind and duration (s), for the summary adaptive polls read (``durations.py``)."""


@dataclass(frozen=True)
class Wait:
    """Check again in ``delay_s``: the same step, a new carrier."""

    delay_s: float
    reason: str
    kind: WaitKind
    set: dict[str, Any] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()


Outcome = Done | Wait
StepFn = Callable[[StepContext], Outcome]
CancelFn = Callable[[AEPClient, RunRecord], None]


def spend_or_wait(ctx: StepContext, quota: Quota) -> Wait | None:
    """Record this step's POST intent and spend its quota: None when the step may POST now.

    Over quota the run waits for the window to open (``on_quota="wait"``) or fails with
    ``QuotaExhausted`` (``on_quota="fail"``); nothing is spent either way.
    """
    result = ctx.execution.intent(ctx.step, ctx.quota_specs(quota))
    if result.verdict == "ok":
        return None
    assert result.bucket is not None
    spec = result.bucket.spec
    if result.verdict == "line":  # room in this window, for the runs ahead in line first
        reason = (f"{spec.name} quota for {spec.scope}: {result.used} of {spec.limit} used, "
                  f"{result.ahead} run{'s' if result.ahead != 1 else ''} ahead in line")  # fmt: skip
        return Wait(ctx.config.activation_poll.initial_s, reason, WaitKind.QUOTA)
    msg = f"{spec.name} quota for {spec.scope} used up ({result.used} of {spec.limit})"
    if ctx.request.on_quota == "fail":
        raise QuotaExhausted(msg, quota=spec.name, reset_at=float(result.bucket.end))
    def utc(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))

    end, now = result.bucket.end, ctx.now()
    if end <= now:
        # The full window has ended, but a POST within QUOTA_EDGE_S of its end may still be counted in
        # it (AEP's clock is not ours), so the slot is only free once the edge has passed too.
        until = end + ctx.quotas.edge_s
        return Wait(max(1.0, until - now) + 1.0, f"{msg} in the window that ended at {utc(end)}; a POST within "
                    f"QUOTA_EDGE_S ({ctx.quotas.edge_s:g} s) of its end still counts in it, so waiting until "
                    f"{utc(until)}", WaitKind.QUOTA)  # fmt: skip
    return Wait(max(1.0, end - now) + 1.0, f"{msg}; waiting for the window that opens at {utc(end)}", WaitKind.QUOTA)

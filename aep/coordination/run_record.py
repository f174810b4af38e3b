"""The run record: its type, its status and failure kinds, and its parsing from the run hash.

The ledger (``runs.py``) is its one writer; its module docstring draws the hash's fields. The terminal
set and the layout version are written once, here, and handed to the Lua scripts (``RUN_CONSTS``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from aep_activator.aep.coordination.scripts import define

LAYOUT = "3"
"""The run-record layout these scripts read and write (``ledger:version`` in Redis)."""

LIFTS_FROM = "2"
"""The older layout the scripts bring up to :data:`LAYOUT` where they meet a record of it (``lift`` in
``lua/lib_run.lua``): a run in flight across the upgrade, or one an older producer created."""

LONG_FIELDS = ("request", "lines", "flow_runs", "error")
"""Record fields kept in the run's second hash, ``run:{id}:long`` (with every ``spent:{step}``): their
values outgrow Redis's ``hash-max-listpack-value`` (64 B by default), and one such value turns the whole
record into a hashtable, which costs about four times a listpack's memory. A short field can still
outgrow it now and then (a quota wait's reason names the quota's scope; a long idempotency key): that
record is a hashtable until it ends, as Redis never converts a hash back."""

LONG_PREFIX = "spent:"
"""Fields named with this prefix (the quota slots a step's POST spent) are long too."""


TIMELINE_MAX = 200
"""Newest events kept per run; pinned events (created, adopted, first error, recoveries, end) stay."""


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


OPEN = frozenset(set(RunStatus) - TERMINAL)


class FailureKind(StrEnum):
    """Why a run failed: what ``resume`` (and an operator) decides from, never the error text."""

    AEP_JOB_FAILED = "aep_job_failed"  # an AEP job or flow run ended FAILED or CANCELLED
    DEADLINE = "deadline"  # an AEP job, or a wait on us, outlived its deadline (the job was cancelled)
    PERMANENT = "permanent"  # AEP refused the request (4xx): fix the request or the account
    PREFLIGHT = "preflight"  # checked before spending a slot: AEP would refuse (an audience not mapped)
    RETRIES = "retries"  # transient errors beyond RETRY_MAX in a row
    QUOTA = "quota"  # on_quota="fail" and a quota is used up
    UNACCOUNTED = "unaccounted"  # a POST's outcome could not be settled from AEP's lists
    BUG = "bug"  # an unexpected exception: the message says which


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str
    step: str


define(
    "RUN_CONSTS",
    "local TERMINAL = {" + ", ".join(f"{s.value} = true" for s in sorted(TERMINAL)) + "}\n"
    f"local LAYOUT = '{LAYOUT}'\nlocal LIFTS_FROM = '{LIFTS_FROM}'\nlocal TIMELINE_MAX = {TIMELINE_MAX}\n"
    "local LONG = {" + ", ".join(f"{f} = true" for f in LONG_FIELDS) + f"}}\nlocal LONG_PREFIX = '{LONG_PREFIX}'",
)


@dataclass
class RunRecord:
    """A run as the ledger holds it. ``flow_runs`` items are ``{segment, order, run_id, status}``, and ``took``
    (s, AEP's own) once a flow run ended and AEP dated it."""

    run_id: str
    status: RunStatus
    step: str
    request: dict[str, Any]
    started_by: str
    created_at: float
    updated_at: float
    idempotency_key: str | None = None
    seq: int = 0
    generation: int = 0
    attempt: int = 0
    errors: int = 0
    carrier: str = ""
    lease_until: float | None = None
    segment_job_id: str | None = None
    export_job_id: str | None = None
    flow_runs: list[dict[str, Any]] = field(default_factory=list)
    aep_status: str | None = None
    blocker: str | None = None
    wait_until: float | None = None
    waiting_reason: str | None = None
    wait_kind: str | None = None
    wait_since: float | None = None
    activated_at: float | None = None
    failure: Failure | None = None
    cancel_requested: str | None = None
    recoveries: int = 0
    step_since: float | None = None
    intents: dict[str, float] = field(default_factory=dict)
    spent: dict[str, dict[str, Any]] = field(default_factory=dict)
    layout: str = LAYOUT
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def error(self) -> str | None:
        return self.failure.message if self.failure else None

    @property
    def holder(self) -> str:
        """The quota holder of this generation (a resumed run that POSTs again spends again)."""
        return self.run_id if not self.generation else f"{self.run_id}#{self.generation}"

    @property
    def task_id(self) -> str:
        """The Celery task id of the current step: one Flower row per step and generation."""
        return task_id(self.run_id, self.step, self.generation)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["error"] = self.error
        return out


def task_id(run_id: str, step: str, generation: int) -> str:
    return f"{run_id}.{step}.{generation}"


def parse_record(run_id: str, raw: dict[str, str]) -> RunRecord:
    def num(name: str) -> float | None:
        value = raw.get(name)
        return float(value) if value else None

    def text(name: str) -> str | None:
        return raw.get(name) or None

    failure = None
    if raw.get("failure_kind"):
        failure = Failure(FailureKind(raw["failure_kind"]), raw.get("error", ""), raw.get("failure_step", ""))
    elif raw.get("error"):  # layout 1 kept only the text
        failure = Failure(FailureKind.BUG, raw["error"], raw.get("step", ""))
    status = raw.get("status") or RunStatus.QUEUED
    return RunRecord(
        run_id=run_id,
        status=RunStatus(status),
        step=raw.get("step") or "",
        request=json.loads(raw.get("request") or "{}"),
        started_by=raw.get("started_by") or "",
        created_at=num("created_at") or 0.0,
        updated_at=num("updated_at") or 0.0,
        idempotency_key=text("idempotency_key"),
        seq=int(raw.get("seq") or 0),
        generation=int(raw.get("gen") or raw.get("generation") or 0),
        attempt=int(raw.get("attempt") or 0),
        errors=int(raw.get("errors") or 0),
        carrier=raw.get("carrier") or "",
        lease_until=num("lease_until"),
        segment_job_id=text("segment_job_id"),
        export_job_id=text("export_job_id"),
        flow_runs=json.loads(raw.get("flow_runs") or "[]"),
        aep_status=text("aep_status"),
        blocker=text("blocker"),
        wait_until=num("wait_until"),
        waiting_reason=text("waiting_reason"),
        wait_kind=text("wait_kind"),
        wait_since=num("wait_since"),
        activated_at=num("activated_at"),
        failure=failure,
        cancel_requested=text("cancel_requested"),
        recoveries=int(raw.get("recoveries") or 0),
        step_since=num("step_since"),
        intents={k.split(":", 1)[1]: float(v) for k, v in raw.items() if k.startswith("intent:") and v},
        spent={k.split(":", 1)[1]: json.loads(v) for k, v in raw.items() if k.startswith("spent:") and v},
        layout=raw.get("v") or "1",
    )


def merge_timeline(pinned: list[str], recent: list[str]) -> list[dict[str, Any]]:
    """Pinned and recent events as one list, oldest first, each once.

    A pinned event missing from the recent list was trimmed from its head, so it is older than all of it.
    (Layout 2 before lazy pinning also copied each pinned event into the pinned list when it was written:
    such a copy is still in ``recent`` until trimmed, and is shown once.)
    """
    kept = set(recent)
    events = [json.loads(text) for text in [*(p for p in pinned if p not in kept), *recent]]
    for event in events:
        event.pop("pin", None)  # the ledger's own mark (lib_run.lua append_event), not part of the event
    return events

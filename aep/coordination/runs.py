"""The run ledger: the one writer of every run record, and what carries each open run to its end.

Every open run always has a **carrier**: a member of ``{prefix}carriers`` (run id -> the time the
watchdog must publish its current step). Broker messages are only wake-ups; the carrier is written in
the same atomic step as every ledger change (``run_create.lua``, ``run_leave.lua``), so a lost message,
a dead worker or a failed publish never strands a run (``carriers.py`` is the watchdog).

An execution of a step *enters* (``run_enter.lua``: the message must carry the run's current step and
``seq``, and no live execution may hold the run; it then holds a lease until its hard time limit plus
a slack), and *leaves* (``run_leave.lua``: fields, events and the next carrier in one step, refused if
its lease is gone). Before a POST it records an *intent* and spends the POST's quota slots in one
step (``run_intent.lua``); ``run_unintent.lua`` undoes both on proof that AEP did not accept it.

Run record (HASH ``{prefix}run:{run_id}``, layout :data:`LAYOUT`; the key layout is in ``keys.py``)::

    v                   layout version                 status, step     RunStatus, current step name
    seq                 carrier sequence: every transition bumps it, and only a message carrying
                        the current one runs (the fence)
    gen                 generation: resume with a new POST bumps it (quota holder ``{id}#{gen}``)
    carrier             due | woken | running          lease, lease_until   the holding execution
    attempt, errors     executions of the current step; consecutive transient errors in it
    request             the ActivationRequest (JSON)   started_by, idempotency_key, created_at, updated_at
    intent:{step}       epoch s an unresolved POST was sent at (deleted once its outcome is known)
    spent:{step}        JSON {holder, keys}: the quota slots that POST spent
    segment_job_id, export_job_id, flow_runs (JSON), aep_status, blocker
    wait_until, waiting_reason, wait_kind, wait_since   the current wait
    failure_kind, failure_step, error                    why a failed run failed (FailureKind)
    cancel_requested    who began a cancel             recoveries   watchdog re-publications
    step_since          epoch s the run reached its current step (the step-duration metric)
    last_event          the coalescing key of the newest timeline event

Times written by the scripts come from Redis ``TIME`` (one clock for every host); tests inject a
clock, passed to every script through ARGV.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import redis

from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.quota import Bucket
from aep_activator.aep.coordination.scripts import define, load_script

LAYOUT = "2"
"""The run-record layout these scripts read and write (``ledger:version`` in Redis)."""
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
    f"local LAYOUT = '{LAYOUT}'\nlocal TIMELINE_MAX = {TIMELINE_MAX}",
)


@dataclass
class RunRecord:
    """A run as the ledger holds it. ``flow_runs`` items are ``{segment, order, run_id, status}``."""

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


@dataclass(frozen=True)
class Admission:
    """When a new run is expected to spend its quotas: ``now`` (in the current windows), ``waits`` (for
    the window opening at ``opens_at``, at ``place`` in its line), ``never`` (a limit of 0), or
    ``refused`` (``on_quota="fail"``: nothing was recorded). A forecast from the ledger; ``quotas`` has
    one entry per quota (used, limit, runs ahead in line)."""

    verdict: str
    opens_at: float = 0.0
    place: int = 0
    quotas: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Admission | None:
        if not text:
            return None
        raw = json.loads(text)
        quotas = raw.get("quotas") or []
        return cls(raw["verdict"], float(raw.get("opens_at") or 0), int(raw.get("place") or 0),
                   quotas if isinstance(quotas, list) else [])  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Created:
    verdict: str  # created | existing | relaunched | refused | resumed
    run_id: str
    status: RunStatus
    step: str
    seq: int
    generation: int
    admission: Admission | None = None

    @property
    def needs_wakeup(self) -> bool:
        return self.verdict in ("created", "relaunched")


@dataclass(frozen=True)
class Entry:
    """The outcome of ``enter``: ``ok`` with the record (and the server's time), or why to drop."""

    verdict: str  # ok | missing | layout | terminal | stale | busy
    now: float = 0.0
    record: RunRecord | None = None
    detail: str = ""


@dataclass(frozen=True)
class Event:
    step: str
    event: str
    detail: str = ""
    pin: bool = False
    key: str = ""
    """Events with the same non-empty key in a row are kept as one, with a count."""


@dataclass(frozen=True)
class Next:
    step: str
    delay_s: float = 0.0
    publish: bool = False
    """True: the caller publishes the wake-up now (the carrier then only guards against its loss)."""
    same_step: bool = False


@dataclass
class Change:
    """What one execution writes when it leaves (``run_leave.lua``)."""

    set: dict[str, Any] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)
    settle: str = ""
    status: RunStatus = RunStatus.RUNNING
    next: Next | None = None
    finish_status: RunStatus | None = None
    failure: Failure | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    """Counters to add to ``{prefix}metrics`` in the same script (aep/coordination/metrics.py)."""

    def payload(self, ttl_s: float, grace_s: float) -> str:
        if (self.next is None) == (self.finish_status is None):
            raise ValueError("a change moves the run to a next carrier or finishes it, exactly one")
        body: dict[str, Any] = {
            "set": {k: _field_text(v) for k, v in self.set.items()},
            "del": list(self.delete),
            "events": [asdict(e) for e in self.events],
            "claims": [list(c) for c in self.claims],
            "settle": self.settle,
            "status": self.status.value,
            "ttl_s": int(ttl_s),
            "grace_s": grace_s,
        }
        if self.metrics:
            body["metrics"] = dict(self.metrics)
        if self.next is not None:
            body["next"] = asdict(self.next)
        if self.finish_status is not None:
            body["finish"] = {"status": self.finish_status.value}
            if self.failure is not None:
                body["finish"].update(
                    failure_kind=self.failure.kind.value, failure_step=self.failure.step, error=self.failure.message
                )
        return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class Left:
    ok: bool
    seq: int = 0
    conflicts: dict[str, str] = field(default_factory=dict)
    """AEP ids this run claimed that another run already owns: id -> owner."""


@dataclass(frozen=True)
class IntentResult:
    verdict: str  # ok | lost | cancelled | exists | quota | line | skew
    now: float = 0.0
    bucket: Bucket | None = None
    used: int = 0
    ahead: int = 0


@dataclass(frozen=True)
class CancelResult:
    verdict: str  # cancelled | wait | terminal | missing
    step: str = ""
    unresolved_intent: bool = False
    lease_until: float = 0.0
    status: str = ""


class LeaseLost(RuntimeError):
    """This execution no longer holds the run: another execution took over, or the run was cancelled."""


class RunLedger:
    """The run records of one key prefix. ``clock`` injects "now" into every script (tests only)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_s: float = 30 * 86400,
        grace_s: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._r = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self._clock = clock
        self._create = load_script(client, "run_create")
        self._enter = load_script(client, "run_enter")
        self._leave = load_script(client, "run_leave")
        self._intent = load_script(client, "run_intent")
        self._unintent = load_script(client, "run_unintent")
        self._cancel = load_script(client, "run_cancel")
        self._resume = load_script(client, "run_resume")

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    # --- creation -------------------------------------------------------------------------------

    def create(
        self,
        request: dict[str, Any],
        *,
        started_by: str,
        first_step: str,
        run_id: str,
        idempotency_key: str | None = None,
        lines: Sequence[dict[str, Any]] = (),
        priority: int = 1,
        refuse_unless_now: bool = False,
    ) -> Created:
        """Record a run with its first carrier, or return the run that owns ``idempotency_key``.

        One round trip: the record, its ``created`` event, the recent-runs index, the carrier and the
        idempotency key are written together, so a producer that dies at any point leaves either
        nothing or a run that the watchdog carries.
        """
        fields = {
            "request": json.dumps(request, separators=(",", ":")),
            "started_by": started_by,
            "step": first_step,
            "idempotency_key": idempotency_key or "",
        }
        event = {"step": "queued", "event": "created", "detail": f"by {started_by}"}
        admission = {"holder": run_id, "priority": priority, "refuse_unless_now": refuse_unless_now,
                     "lines": list(lines)}  # fmt: skip
        k = self.keys
        raw = self._create(
            keys=[k.idempotency(idempotency_key or "-"), k.run(run_id), k.timeline(run_id), k.pinned(run_id), k.runs,
                  k.carriers],
            args=[run_id, json.dumps(fields), json.dumps(event), int(self.ttl_s), self.grace_s,
                  "1" if idempotency_key else "0", self._now(), k.prefix, json.dumps(admission)],
        )  # fmt: skip
        verdict, rid, status, step, seq, gen, forecast = (_text(x) for x in raw)
        return Created(verdict, rid, RunStatus(status), step, int(seq), int(gen), Admission.parse(forecast))

    # --- reads ------------------------------------------------------------------------------------

    def get(self, run_id: str, *, timeline: bool = True) -> RunRecord | None:
        if not timeline:
            raw = self._r.hgetall(self.keys.run(run_id))
            return parse_record(run_id, _texts(raw)) if raw else None
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(self.keys.run(run_id))
        pipe.lrange(self.keys.timeline(run_id), 0, -1)
        pipe.lrange(self.keys.pinned(run_id), 0, -1)
        raw, recent, pinned = pipe.execute()
        if not raw:
            return None
        record = parse_record(run_id, _texts(raw))
        record.timeline = merge_timeline([_text(e) for e in pinned], [_text(e) for e in recent])
        return record

    def recent(self, limit: int = 20) -> list[RunRecord]:
        ids = [_text(x) for x in self._r.zrevrange(self.keys.runs, 0, max(0, limit - 1))]
        records = [self.get(i, timeline=False) for i in ids]
        return [r for r in records if r is not None]

    def exists(self, run_id: str) -> bool:
        return bool(self._r.exists(self.keys.run(run_id)))

    # --- one execution of a step --------------------------------------------------------------------

    def enter(self, run_id: str, step: str, seq: int, *, token: str, lease_s: float) -> Entry:
        k = self.keys
        raw = self._enter(
            keys=[k.run(run_id), k.carriers, k.timeline(run_id), k.pinned(run_id)],
            args=[step, seq, token, lease_s, self._now(), run_id, k.prefix],
        )
        items = [_text(x) for x in raw]
        if items[0] != "ok":
            return Entry(items[0], detail=" ".join(items[1:]))
        fields = dict(zip(items[2::2], items[3::2], strict=True))
        return Entry("ok", float(items[1]), parse_record(run_id, fields))

    def leave(self, run_id: str, token: str, change: Change, *, lock_keys: Sequence[str] = ()) -> Left:
        """Write what an execution did and the run's next carrier (or its end); ``ok=False``: lease lost."""
        k = self.keys
        raw = self._leave(
            keys=[k.run(run_id), k.timeline(run_id), k.pinned(run_id), k.carriers, *lock_keys],
            args=[token, change.payload(self.ttl_s, self.grace_s), self._now(), run_id, k.prefix],
        )
        items = [_text(x) for x in raw]
        if items[0] != "ok":
            return Left(False)
        return Left(True, int(items[1]), dict(zip(items[2::2], items[3::2], strict=True)))

    def intent(
        self, run_id: str, token: str, step: str, *, holder: str, buckets: Sequence[Bucket], edge_s: float
    ) -> IntentResult:
        """Record the intent to POST and spend ``buckets`` for ``holder``, all or nothing."""
        flat = [x for b in buckets for x in b.script_args()]
        raw = self._intent(keys=[self.keys.run(run_id)], args=[token, step, holder, edge_s, self._now(), *flat])
        items = [_text(x) for x in raw]
        verdict = items[0]
        if verdict == "ok":
            return IntentResult("ok", float(items[1]))
        if verdict == "exists":
            return IntentResult("exists", float(items[1]))
        if verdict in ("quota", "skew", "line"):
            bucket = buckets[int(items[1]) - 1]
            return IntentResult(verdict, bucket=bucket, used=int(items[2]) if len(items) > 2 else 0,
                                ahead=int(items[3]) if len(items) > 3 else 0)  # fmt: skip
        return IntentResult(verdict)

    def unintent(self, run_id: str, token: str, step: str) -> None:
        """Forget ``step``'s intent and refund its slots: AEP demonstrably did not accept the POST."""
        raw = self._unintent(keys=[self.keys.run(run_id)], args=[token, step])
        if _text(raw[0]) != "ok":
            raise LeaseLost(run_id)

    def claim(self, run_id: str, kind: str, aep_id: str) -> bool:
        """Make ``run_id`` the owner of an AEP job or flow run; False if another run owns it.

        Looking before creating matches AEP's jobs by content, and two identical runs look alike:
        ownership keeps one run from adopting a job that another run created.
        """
        key = self.keys.owner(kind, aep_id)
        if self._r.set(key, run_id, nx=True, ex=int(self.ttl_s)):
            return True
        return self.owner(kind, aep_id) == run_id

    def owner(self, kind: str, aep_id: str) -> str | None:
        value = self._r.get(self.keys.owner(kind, aep_id))
        return None if value is None else _text(value)

    def note(self, run_id: str, event: Event) -> None:
        """Append an event to a run's timeline outside any execution (e.g. a cancel's aftermath)."""
        entry = json.dumps({"t": self._r.time()[0] if self._clock is None else self._clock(), "step": event.step,
                            "event": event.event, "detail": event.detail})  # fmt: skip
        pipe = self._r.pipeline(transaction=True)
        pipe.rpush(self.keys.timeline(run_id), entry)
        pipe.ltrim(self.keys.timeline(run_id), -TIMELINE_MAX, -1)
        if event.pin:
            pipe.rpush(self.keys.pinned(run_id), entry)
        pipe.execute()

    # --- operator actions ---------------------------------------------------------------------------

    def cancel(self, run_id: str, actor: str, *, lock_keys: Sequence[str] = ()) -> CancelResult:
        """One try at cancelling (see ``run_cancel.lua``); ``wait`` means call again shortly."""
        k = self.keys
        raw = self._cancel(
            keys=[k.run(run_id), k.timeline(run_id), k.pinned(run_id), k.carriers, *lock_keys],
            args=[actor, self._now(), run_id, int(self.ttl_s), k.prefix],
        )
        items = [_text(x) for x in raw]
        if items[0] == "cancelled":
            return CancelResult("cancelled", step=items[1], unresolved_intent=items[2] == "1")
        if items[0] == "wait":
            return CancelResult("wait", lease_until=float(items[1]))
        if items[0] == "terminal":
            return CancelResult("terminal", status=items[1])
        return CancelResult("missing")

    def resume(self, run_id: str, step: str, *, forget: Sequence[str], new_generation: bool, actor: str) -> Created:
        """Restart a failed run at ``step`` with a new carrier; ``ValueError`` if it is not failed."""
        k = self.keys
        raw = self._resume(
            keys=[k.run(run_id), k.timeline(run_id), k.pinned(run_id), k.carriers],
            args=[step, json.dumps(list(forget)), "1" if new_generation else "0", actor, self._now(), run_id,
                  self.grace_s, int(self.ttl_s), k.prefix],
        )  # fmt: skip
        items = [_text(x) for x in raw]
        if items[0] != "ok":
            raise ValueError(f"run {run_id} is {items[1]}; only a failed run can be resumed")
        return Created("resumed", run_id, RunStatus.QUEUED, items[1], int(items[2]), int(items[3]))


# --- parsing ----------------------------------------------------------------------------------------


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
    """
    kept = set(recent)
    return [json.loads(text) for text in [*(p for p in pinned if p not in kept), *recent]]


def _field_text(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _texts(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}

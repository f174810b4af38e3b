"""The run ledger: the one writer of every run record, and what carries each open run to its end.

The record's type and parsing live in ``run_record.py``, what the writes take and answer in
``run_changes.py``; both are re-exported here, so ``from …coordination.runs import RunRecord`` works.

Every open run always has a **carrier**: a member of ``{prefix}carriers`` (run id -> the time the
watchdog must publish its current step). Broker messages are only wake-ups; the carrier is written in
the same atomic step as every ledger change (``run_create.lua``, ``run_leave.lua``), so a lost message,
a dead worker or a failed publish never strands a run (``carriers.py`` is the watchdog).

An execution of a step *enters* (``run_enter.lua``: the message must carry the run's current step and
``seq``, and no live execution may hold the run; it then holds a lease until its hard time limit plus
a slack), and *leaves* (``run_leave.lua``: fields, events and the next carrier in one step, refused if
its lease is gone). Before a POST it records an *intent* and spends the POST's quota slots in one
step (``run_intent.lua``); ``run_unintent.lua`` undoes both on proof that AEP did not accept it.

Run record (HASH ``{prefix}run:{run_id}``, layout :data:`LAYOUT`; the key layout is in ``keys.py``).
The fields marked *long* (``run_record.LONG_FIELDS`` and ``spent:{step}``) live in a second hash,
``{prefix}run:{run_id}:long``, with the same TTL: one value longer than Redis's
``hash-max-listpack-value`` (64 B by default) would turn the whole record into a hashtable, about four
times the memory of the listpack the other fields fit in. The scripts route each field to its hash
(``write_fields`` in ``lua/lib_run.lua``) and lift a record of the older one-hash layout 2 to layout 3
where they meet one (``lift``), so runs in flight across an upgrade go on::

    v                   layout version                 status, step     RunStatus, current step name
    seq                 carrier sequence: every transition bumps it, and only a message carrying
                        the current one runs (the fence)
    gen                 generation: resume with a new POST bumps it (quota holder ``{id}#{gen}``)
    carrier             due | woken | running          lease, lease_until   the holding execution
    attempt, errors     executions of the current step; consecutive transient errors in it
    request (long)      the ActivationRequest (JSON)   started_by, created_at, updated_at
    idempotency_key     the producer's key (absent when it gave none)
    intent:{step}       epoch s an unresolved POST was sent at (deleted once its outcome is known)
    spent:{step} (long) JSON {holder, keys}: the quota slots that POST spent
    lines (long)        JSON list of the quota lines the run joined at creation (line:… keys)
    segment_job_id, export_job_id, flow_runs (long, JSON), aep_status, blocker
    wait_until, waiting_reason, wait_kind, wait_since   the current wait
    failure_kind, failure_step, error (long)             why a failed run failed (FailureKind)
    cancel_requested    who began a cancel             recoveries   watchdog re-publications
    step_since          epoch s the run reached its current step (the step-duration metric)
    last_event          the coalescing key of the newest timeline event (absent when it has none)

Times written by the scripts come from Redis ``TIME`` (one clock for every host); tests inject a
clock, passed to every script through ARGV.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import redis

from aep_activator.aep.coordination.keys import Keys
from aep_activator.aep.coordination.quota import Bucket
from aep_activator.aep.coordination.replies import as_text, as_texts
from aep_activator.aep.coordination.run_changes import (
    Admission,
    CancelResult,
    Change,
    Created,
    Entry,
    Event,
    IntentResult,
    LeaseLost,
    Left,
    Next,
)
from aep_activator.aep.coordination.run_record import (
    LAYOUT,
    OPEN,
    TERMINAL,
    TIMELINE_MAX,
    Failure,
    FailureKind,
    RunRecord,
    RunStatus,
    merge_timeline,
    parse_record,
    task_id,
)
from aep_activator.aep.coordination.scripts import load_script

__all__ = [
    "LAYOUT", "OPEN", "TERMINAL", "TIMELINE_MAX", "Admission", "CancelResult", "Change", "Created", "Entry",
    "Event", "Failure", "FailureKind", "IntentResult", "LeaseLost", "Left", "Next", "RunLedger", "RunRecord",
    "RunStatus", "merge_timeline", "parse_record", "task_id",
]


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
        self._note = load_script(client, "run_note")

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
        }
        if idempotency_key:
            fields["idempotency_key"] = idempotency_key
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
        verdict, rid, status, step, seq, gen, forecast = (as_text(x) for x in raw)
        return Created(verdict, rid, RunStatus(status), step, int(seq), int(gen), Admission.parse(forecast))

    # --- reads ------------------------------------------------------------------------------------

    def get(self, run_id: str, *, timeline: bool = True) -> RunRecord | None:
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(self.keys.run(run_id))
        pipe.hgetall(self.keys.long(run_id))
        if timeline:
            pipe.lrange(self.keys.timeline(run_id), 0, -1)
            pipe.lrange(self.keys.pinned(run_id), 0, -1)
        raw, long, *lists = pipe.execute()
        if not raw:
            return None
        record = parse_record(run_id, {**as_texts(long), **as_texts(raw)})  # layout 2 kept all in `raw`
        if timeline:
            recent, pinned = lists
            record.timeline = merge_timeline([as_text(e) for e in pinned], [as_text(e) for e in recent])
        return record

    def recent(self, limit: int = 20) -> list[RunRecord]:
        ids = [as_text(x) for x in self._r.zrevrange(self.keys.runs, 0, max(0, limit - 1))]
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
        items = [as_text(x) for x in raw]
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
        items = [as_text(x) for x in raw]
        if items[0] != "ok":
            return Left(False)
        return Left(True, int(items[1]), dict(zip(items[2::2], items[3::2], strict=True)))

    def intent(
        self, run_id: str, token: str, step: str, *, holder: str, buckets: Sequence[Bucket], edge_s: float
    ) -> IntentResult:
        """Record the intent to POST and spend ``buckets`` for ``holder``, all or nothing."""
        flat = [x for b in buckets for x in b.script_args()]
        raw = self._intent(keys=[self.keys.run(run_id)], args=[token, step, holder, edge_s, self._now(), *flat])
        items = [as_text(x) for x in raw]
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
        if as_text(raw[0]) != "ok":
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
        return None if value is None else as_text(value)

    def note(self, run_id: str, event: Event) -> None:
        """Append an event to a run's timeline outside any execution (e.g. a cancel's aftermath)."""
        entry = json.dumps({"t": self._r.time()[0] if self._clock is None else self._clock(), "step": event.step,
                            "event": event.event, "detail": event.detail})  # fmt: skip
        self._note(keys=[self.keys.timeline(run_id), self.keys.pinned(run_id)], args=[entry, "1" if event.pin else "0"])

    # --- operator actions ---------------------------------------------------------------------------

    def cancel(self, run_id: str, actor: str, *, lock_keys: Sequence[str] = ()) -> CancelResult:
        """One try at cancelling (see ``run_cancel.lua``); ``wait`` means call again shortly."""
        k = self.keys
        raw = self._cancel(
            keys=[k.run(run_id), k.timeline(run_id), k.pinned(run_id), k.carriers, *lock_keys],
            args=[actor, self._now(), run_id, int(self.ttl_s), k.prefix],
        )
        items = [as_text(x) for x in raw]
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
        items = [as_text(x) for x in raw]
        if items[0] != "ok":
            raise ValueError(f"run {run_id} has status {items[1]}; only a failed run can be resumed")
        return Created("resumed", run_id, RunStatus.QUEUED, items[1], int(items[2]), int(items[3]))

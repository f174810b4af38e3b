"""The run ledger: what each activation run has done, kept in Redis, so every step can run twice.

Before a step POSTs it records an *intent* (the time it is about to send); after AEP answers it records
the AEP id. A redelivered or retried step reads the ledger first: an id means "already done", an intent
without an id means "the POST may have happened": look at AEP's job list before creating anything.

Run record fields (HASH ``{prefix}run:{run_id}``; see ``aep/constants.py`` for the whole key layout):
``status`` (queued | running | waiting | succeeded | failed | cancelled), ``step``, ``request`` (JSON),
``started_by``, ``created_at``/``updated_at`` (epoch s), ``error``, ``segment_job_id``,
``export_job_id``, ``flow_runs`` (JSON list of {segment, order, run_id, status}), ``aep_status``,
``wait_until``/``waiting_reason``, ``intent:{step}``, ``quota:{name}`` (reserved window start),
``cursor_step``/``cursor_attempt`` (the fence; ``aep/lua/run_enter.lua``), ``chain`` (JSON task ids).
The timeline is a LIST of JSON events ``{t, step, event, detail}``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from aep_activator.aep.coordination.scripts import load_script

# redis-py's hset(mapping=...) key and value types.
_Key = bytes | bytearray | memoryview | str | int | float
_Value = bytes | bytearray | memoryview | str | int | float

STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
TIMELINE_MAX = 500


@dataclass
class RunRecord:
    run_id: str
    status: str
    step: str
    request: dict[str, Any]
    started_by: str
    created_at: float
    updated_at: float
    idempotency_key: str | None = None
    error: str | None = None
    segment_job_id: str | None = None
    export_job_id: str | None = None
    flow_runs: list[dict[str, Any]] = field(default_factory=list)
    aep_status: str | None = None
    wait_until: float | None = None
    waiting_reason: str | None = None
    chain: list[str] = field(default_factory=list)
    generation: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _s(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class RunLedger:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        ttl_s: float = 30 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._r = client
        self._prefix = prefix
        self._ttl = int(ttl_s)
        self._clock = clock
        self._enter = load_script(client, "run_enter")
        self._unlock = load_script(client, "compare_and_delete")
        self._set_status = load_script(client, "run_status")

    def key(self, run_id: str) -> str:
        return f"{self._prefix}run:{run_id}"

    def _timeline_key(self, run_id: str) -> str:
        return f"{self._prefix}run:{run_id}:timeline"

    # --- creation ---------------------------------------------------------------------------------

    def create(
        self,
        request: dict[str, Any],
        *,
        started_by: str,
        idempotency_key: str | None = None,
        run_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, bool]:
        """Create a run, or return the run that already owns ``idempotency_key``. ``(run_id, created)``.

        The record, its first timeline event and the recent-runs index are written in one transaction
        (one round trip): enqueueing is on the producer's hot path.
        """
        run_id = run_id or uuid.uuid4().hex
        if idempotency_key is not None:
            idem = f"{self._prefix}idem:{idempotency_key}"
            if not self._r.set(idem, run_id, nx=True, ex=self._ttl):
                existing = _s(self._r.get(idem))
                if existing:
                    return existing, False
                raise RuntimeError("idempotency key vanished while being read")  # pragma: no cover
        now = self._clock()
        fields: dict[_Key, _Value] = {
            "status": "queued",
            "step": "queued",
            "request": json.dumps(request, separators=(",", ":")),
            "started_by": started_by,
            "created_at": repr(now),
            "updated_at": repr(now),
            "idempotency_key": idempotency_key or "",
        }
        for name, value in (extra or {}).items():
            fields[name] = json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else str(value)
        event = json.dumps({"t": round(now, 3), "step": "queued", "event": "created", "detail": f"by {started_by}"})
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self.key(run_id), mapping=fields)
        pipe.expire(self.key(run_id), self._ttl)
        pipe.rpush(self._timeline_key(run_id), event)
        pipe.expire(self._timeline_key(run_id), self._ttl)
        pipe.zadd(f"{self._prefix}runs", {run_id: now})
        pipe.execute()
        return run_id, True

    # --- reads --------------------------------------------------------------------------------------

    def get(self, run_id: str, *, timeline: bool = True) -> RunRecord | None:
        """The run record; ``timeline=False`` skips reading the events (the steps do not need them)."""
        raw = {_s(k): _s(v) for k, v in self._r.hgetall(self.key(run_id)).items()}
        if not raw:
            return None
        events = [json.loads(e) for e in self._r.lrange(self._timeline_key(run_id), 0, -1)] if timeline else []

        def num(name: str) -> float | None:
            value = raw.get(name)
            return float(value) if value else None

        return RunRecord(
            run_id=run_id,
            status=raw.get("status") or "queued",
            step=raw.get("step") or "",
            request=json.loads(raw.get("request") or "{}"),
            started_by=raw.get("started_by") or "",
            created_at=num("created_at") or 0.0,
            updated_at=num("updated_at") or 0.0,
            idempotency_key=raw.get("idempotency_key") or None,
            error=raw.get("error") or None,
            segment_job_id=raw.get("segment_job_id") or None,
            export_job_id=raw.get("export_job_id") or None,
            flow_runs=json.loads(raw.get("flow_runs") or "[]"),
            aep_status=raw.get("aep_status") or None,
            wait_until=num("wait_until"),
            waiting_reason=raw.get("waiting_reason") or None,
            chain=json.loads(raw.get("chain") or "[]"),
            generation=int(raw.get("generation") or 0),
            timeline=events,
        )

    def field(self, run_id: str, name: str) -> str | None:
        return _s(self._r.hget(self.key(run_id), name))

    def exists(self, run_id: str) -> bool:
        return bool(self._r.exists(self.key(run_id)))

    def recent(self, limit: int = 20) -> list[RunRecord]:
        raw: list[bytes] = list(self._r.zrevrange(f"{self._prefix}runs", 0, max(0, limit - 1)))  # type: ignore[arg-type]
        ids = [_s(x) for x in raw]
        records = [self.get(i) for i in ids if i]
        return [r for r in records if r is not None]

    # --- writes -------------------------------------------------------------------------------------

    def update(self, run_id: str, **fields: Any) -> None:
        """Set fields (``None`` deletes one). Lists and dicts are stored as JSON."""
        pipe = self._r.pipeline(transaction=True)
        self._queue_update(pipe, run_id, fields)
        pipe.execute()

    def _queue_update(self, pipe: Any, run_id: str, fields: dict[str, Any]) -> None:
        to_set: dict[_Key, _Value] = {"updated_at": repr(self._clock())}
        to_del: list[str] = []
        status = fields.pop("status", None)
        if status is not None:
            if status in TERMINAL:
                raise ValueError("terminal statuses are set with finish_if_open()")
            self._set_status(keys=[self.key(run_id)], args=[status], client=pipe)
        for name, value in fields.items():
            name = name.replace("__", ":")
            if value is None:
                to_del.append(name)
            elif isinstance(value, list | dict):
                to_set[name] = json.dumps(value, separators=(",", ":"))
            else:
                to_set[name] = str(value)
        pipe.hset(self.key(run_id), mapping=to_set)
        if to_del:
            pipe.hdel(self.key(run_id), *to_del)

    def event(self, run_id: str, at_step: str, event: str, detail: str = "", /, **fields: Any) -> None:
        """Append a timeline event ``at_step`` and update ``fields`` of the record, in one round trip."""
        at_step = at_step.rsplit(".", 1)[-1]  # "activation.poll_segment_job" -> "poll_segment_job"
        entry = json.dumps({"t": round(self._clock(), 3), "step": at_step, "event": event, "detail": detail})
        pipe = self._r.pipeline(transaction=True)
        self._queue_update(pipe, run_id, fields)
        pipe.rpush(self._timeline_key(run_id), entry)
        pipe.ltrim(self._timeline_key(run_id), -TIMELINE_MAX, -1)
        pipe.expire(self._timeline_key(run_id), self._ttl)
        pipe.execute()

    def claim(self, kind: str, aep_id: str, run_id: str) -> bool:
        """Make ``run_id`` the owner of an AEP job or flow run; False if another run owns it.

        Looking before creating matches AEP's jobs by content, and two identical runs look alike:
        ownership keeps one run from adopting a job that another run created.
        """
        key = f"{self._prefix}owner:{kind}:{aep_id}"
        if self._r.set(key, run_id, nx=True, ex=self._ttl):
            return True
        return _s(self._r.get(key)) == run_id

    def lock_run(self, run_id: str, ttl_s: float) -> str | None:
        """Exclusive execution of one step of ``run_id``; a token to unlock with, or None if held."""
        token = uuid.uuid4().hex
        if self._r.set(f"{self.key(run_id)}:lock", token, nx=True, px=max(1, int(ttl_s * 1000))):
            return token
        return None

    def unlock_run(self, run_id: str, token: str) -> None:
        # Compare-and-delete: never release a lock that expired and was taken by another execution.
        self._unlock(keys=[f"{self.key(run_id)}:lock"], args=[token])

    def enter(self, run_id: str, step_index: int, attempt: int) -> str:
        """Fence one execution: 'ok', 'stale', 'terminal' or 'missing' (see ``run_enter.lua``)."""
        result = self._enter(keys=[self.key(run_id)], args=[step_index, attempt, self._clock()])
        return _s(result) or "missing"

    def reset_cursor(self, step_index: int, run_id: str) -> None:
        self._r.hset(self.key(run_id), mapping={"cursor_step": step_index, "cursor_attempt": -1})

    def finish_if_open(self, run_id: str, status: str, detail: str = "", **fields: Any) -> bool:
        """Move a run to a terminal status unless it already is in one (cancel races a finishing step)."""
        if status not in TERMINAL:
            raise ValueError(f"{status!r} is not terminal")
        with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.key(run_id))  # type: ignore[no-untyped-call]
                    current = _s(pipe.hget(self.key(run_id), "status"))
                    if current in TERMINAL or current is None:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(self.key(run_id), mapping={"status": status, "updated_at": repr(self._clock())})
                    pipe.hdel(self.key(run_id), "wait_until", "waiting_reason")
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.event(run_id, fields.pop("step", status), status, detail, **fields)
        return True

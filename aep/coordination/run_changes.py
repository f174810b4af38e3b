"""What the run ledger's writes take and answer (``runs.py``): a step's :class:`Change` with its events
and its :class:`Next` carrier, and the verdicts of create, enter, leave, intent and cancel.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from aep_activator.aep.coordination.quota import Bucket
from aep_activator.aep.coordination.run_record import Failure, RunRecord, RunStatus


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
    observe: dict[str, Any] | None = None
    """A finished AEP job's duration for the adaptive polls' summary, added in the same script:
    ``{key, value, size, ttl}`` (``DurationSummary.entry``), so a step run twice adds it once."""

    def payload(self, ttl_s: float, grace_s: float) -> str:
        if (self.next is None) == (self.finish_status is None):
            raise ValueError("a change moves the run to a next carrier or finishes it, exactly one")
        body: dict[str, Any] = {
            "set": {k: _field_text(v) for k, v in self.set.items()},
            "del": list(self.delete),
            "events": [dict(vars(e)) for e in self.events],  # flat: asdict's deep copy cost ~2 % of a step
            "claims": [list(c) for c in self.claims],
            "settle": self.settle,
            "status": self.status.value,
            "ttl_s": int(ttl_s),
            "grace_s": grace_s,
        }
        if self.metrics:
            body["metrics"] = dict(self.metrics)
        if self.observe:
            body["observe"] = dict(self.observe)
        if self.next is not None:
            body["next"] = dict(vars(self.next))
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


def _field_text(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)
    return str(value)

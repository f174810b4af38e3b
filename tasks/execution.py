"""The lease an execution of a step holds on its run: what the step may write while it holds it.

:class:`LeasedExecution` is the ``Execution`` a domain step receives (aep/pipeline/steps/base.py):
the server's clock, the POST intent with its quota slots (sent to the replicas first when
``REDIS_WAIT_REPLICAS`` asks), its refund, and the claim of an adopted AEP job, each bound to the
lease the runner took at entry (tasks/runner.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aep_activator.aep.api.errors import TransientError
from aep_activator.aep.coordination.quota import QuotaSpec
from aep_activator.aep.coordination.runs import IntentResult, LeaseLost, RunRecord
from aep_activator.aep.pipeline.steps.base import RunCancelled
from aep_activator.tasks import crashpoints
from aep_activator.tasks.runtime import Runtime


class LeasedExecution:
    """What a step may write while this execution holds the run's lease (steps/base.py ``Execution``)."""

    def __init__(self, rt: Runtime, record: RunRecord, token: str, server_now: float) -> None:
        self._rt = rt
        self._record = record
        self._token = token
        self._server_now = server_now
        self._t0 = time.monotonic()

    def now(self) -> float:
        return self._server_now + (time.monotonic() - self._t0)

    def intent(self, step: str, quotas: Sequence[QuotaSpec]) -> IntentResult:
        rt = self._rt
        result = IntentResult("skew")
        for now in (self.now(), None):
            at = rt.quotas.server_time() if now is None else now
            buckets = rt.quotas.buckets(quotas, at)
            result = rt.ledger.intent(
                self._record.run_id, self._token, step, holder=self._record.holder, buckets=buckets,
                edge_s=rt.quotas.edge_s,
            )  # fmt: skip
            if result.verdict != "skew":
                break
        if result.verdict == "ok":
            self._replicate(step)
            crashpoints.reached("intent", self._record.run_id, step)
        if result.verdict == "lost":
            raise LeaseLost(self._record.run_id)
        if result.verdict == "cancelled":
            raise RunCancelled(self._record.run_id)
        if result.verdict not in ("ok", "quota", "line"):
            raise AssertionError(f"run {self._record.run_id}: intent for {step} answered {result.verdict}")
        return result

    def _replicate(self, step: str) -> None:
        """With REDIS_WAIT_REPLICAS, send the POST only once its intent and slots are on the replicas."""
        s = self._rt.settings
        if not s.redis_wait_replicas:
            return
        acked = int(self._rt.redis.wait(s.redis_wait_replicas, s.redis_wait_timeout_ms))
        if acked < s.redis_wait_replicas:
            # Not sent, so nothing to look for: forget the intent (a failover may forget it anyway).
            self.unintent(step)
            raise TransientError(
                f"the POST's intent reached {acked} of {s.redis_wait_replicas} Redis replicas within "
                f"{s.redis_wait_timeout_ms} ms (REDIS_WAIT_REPLICAS); not sending it yet"
            )

    def in_turn(self, quotas: Sequence[QuotaSpec]) -> bool:
        rt = self._rt
        return rt.quotas.in_turn(self._record.holder, rt.quotas.buckets(quotas, self.now()))

    def unintent(self, step: str) -> None:
        self._rt.ledger.unintent(self._record.run_id, self._token, step)

    def claim(self, kind: str, aep_id: str) -> bool:
        claimed = self._rt.ledger.claim(self._record.run_id, kind, aep_id)
        if claimed:
            crashpoints.reached("claimed", self._record.run_id, self._record.step)
        return claimed

    def owned_by_other(self, kind: str, aep_id: str) -> bool:
        owner = self._rt.ledger.owner(kind, aep_id)
        return owner is not None and owner != self._record.run_id

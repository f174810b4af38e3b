"""What a stack's simulator journal says about the exactly-once promise: POST attempts, accepted POSTs,
the POSTs of each run and step, who owns each AEP job, and every breach of "one accepted POST per step;
no new POST while an earlier one's outcome is unknown". Mixed into :class:`devstack.stack.Stack`.
"""

from __future__ import annotations

import itertools
from typing import Any

import redis

from aep_activator.aep.api import paths
from aep_activator.aepsim.http.tornado_server import SimulatorServer


class JournalChecks:
    """The journal's accounting, for a stack (its simulator, Redis and key prefix)."""

    simulator: SimulatorServer
    redis_url: str
    prefix: str

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def journal(self, method: str | None = None, template: str | None = None) -> list[dict[str, Any]]:
        """The simulator's request journal, optionally filtered by method and path template."""
        entries = self.simulator.ctx.journal.since(0)
        return [
            e
            for e in entries
            if (method is None or e.get("method") == method) and (template is None or e.get("template") == template)
        ]

    def posts(self) -> dict[str, int]:
        """Every POST *attempt* per path template, whatever its answer (the promise is about attempts)."""
        counts: dict[str, int] = {}
        for e in self.journal(method="POST"):
            counts[e["template"]] = counts.get(e["template"], 0) + 1
        return counts

    def accepted_posts(self) -> dict[str, int]:
        """POSTs per template that AEP accepted: answered 2xx, or processed and then never answered (hung).

        Injected 5xx/429 and dropped connections are answered before processing: AEP did nothing.
        """
        counts: dict[str, int] = {}
        for e in self.journal(method="POST"):
            if accepted(e):
                counts[e["template"]] = counts.get(e["template"], 0) + 1
        return counts

    def post_history(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The AEP POSTs of each (run id, step), oldest first, told apart by their ``x-request-id``."""
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for e in self.journal(method="POST"):
            if e["template"] not in POST_TEMPLATES:
                continue
            rid = next((v for k, v in e["headers"].items() if k.lower() == "x-request-id"), "")
            run_id, _, rest = rid.partition(".")
            out.setdefault((run_id, rest.split(".", 1)[0]), []).append(e)
        return out

    def job_owners(self) -> dict[str, str]:
        """AEP job id -> the run that owns it (created, or adopted by look-before-create), from the ledger."""
        owners: dict[str, str] = {}
        with redis.Redis.from_url(self.redis_url, decode_responses=True) as client:
            for key in client.scan_iter(match=self.prefix + "owner:*", count=1000):
                if (run_id := client.get(key)) is not None:
                    owners[key.rsplit(":", 1)[1]] = run_id
        return owners

    def post_promise_violations(self, settle_s: float | None = None) -> list[str]:
        """Breaches of "one accepted POST per step; no new POST attempt while an earlier one's outcome is
        unknown" (a 5xx, a dropped connection or a lost answer is unknown to the client, until AEP's lists
        prove it: at least LOOK_SETTLE_S later)."""
        settle = float(self.env()["LOOK_SETTLE_S"]) if settle_s is None else settle_s
        owners = self.job_owners()
        problems = []
        history = self.post_history()
        # An accepted POST counts for the run that owns its job. Two runs evaluating the same segments
        # can swap: B's POST is dropped and B adopts the job A's lost answer created; A, finding no job
        # of its own, POSTs again. AEP then holds one job per run, and the ledger one slot per job.
        kept: dict[tuple[str, str], int] = {}
        for (run_id, step), posts in history.items():
            for e in posts:
                if accepted(e):
                    who = owners.get(str(e.get("created")), run_id) if e.get("created") else run_id
                    kept[(who, step)] = kept.get((who, step), 0) + 1
        for (run_id, step), n in kept.items():
            if n > 1:
                problems.append(f"run {run_id} {step}: {n} accepted POSTs created jobs it owns or no run owns")
        for (run_id, step), posts in history.items():
            for a, b in itertools.pairwise(posts):
                if outcome_unknown(a) and b["time"] - a["time"] < settle:
                    problems.append(
                        f"run {run_id} {step}: POSTed again {b['time'] - a['time']:.1f}s after a POST whose outcome "
                        f"was unknown ({a['status']})"
                    )
        return problems


POST_TEMPLATES = frozenset(paths.POSTS)


def accepted(entry: dict[str, Any]) -> bool:
    status = entry.get("status")
    return status == "hung" or (isinstance(status, int) and 200 <= status < 300)


def outcome_unknown(entry: dict[str, Any]) -> bool:
    """What the client could not tell apart from acceptance: no answer, or a 5xx to a POST."""
    status = entry.get("status")
    return status in ("hung", "dropped") or (isinstance(status, int) and status >= 500)

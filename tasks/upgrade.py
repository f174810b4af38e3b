"""Runs in flight survive the upgrade from ledger layout 1 (runs carried by Celery messages and a delay
queue) to layout 2 (every open run has a carrier in the run ledger), and on to layout 3.

Layout 3 differs from layout 2 only in where a record keeps its long fields (a second hash, see
``aep/coordination/runs.py``); the scripts lift a layout-2 record to layout 3 where they meet one, so
from a layout-2 ledger :func:`upgrade` only records the new version.

Layout 1 kept, per run: ``status``, ``step`` (the last step started, or ``queued``), ``cursor_step`` (a
step *index*, aep/pipeline/plan.py ``LAYOUT1_STEPS``), ``intent:{segment_job|export_job|activation}``,
``quota:{name}`` (the window its slot was reserved in), ``errors:{step}``, ``generation``; its waits were
members ``{run_id}:{task}:{retries}`` of ``delay:due`` / ``delay:payload`` / ``delay:lease``; and its quota
slots were ``quota:{name}:{scope}:{window}:reserved|committed`` with the segment-job scope the bare
sandbox name.

:func:`upgrade` (run by every worker at start-up, one at a time under a lock, idempotent) rewrites each
open run (as a layout-2 record, which the watchdog lifts when it hands the run out) so its current
step runs next, with its intent, its spent quota and its AEP ids as they were:
a step with an unresolved intent looks before it creates, as always. A layout-1 reservation counts as
spent (the conservative reading: its POST may have been sent). Old broker messages carry no carrier
``seq``, so the fence drops them. Finished runs keep their records, readable as they are.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, unquote

import redis

from aep_activator.aep.coordination.quota import YearlyWindow
from aep_activator.aep.coordination.run_record import LIFTS_FROM
from aep_activator.aep.coordination.runs import LAYOUT, OPEN, RunStatus
from aep_activator.aep.pipeline.plan import LAYOUT1_STEPS
from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.aep.pipeline.scopes import YEARLY, Quota, scope
from aep_activator.tasks.runtime import Runtime

log = logging.getLogger(__name__)

_INTENTS = {"segment_job": "create_segment_job", "export_job": "create_export_job", "activation": "run_activation"}
_QUOTA_STEP = {"segment_jobs": "create_segment_job", "adhoc": "run_activation"}


def check_layout(rt: Runtime) -> str:
    """The ledger's layout version ('' before any worker of layout 2 or later ran); refuse a newer one."""
    version = _text(rt.redis.get(rt.keys.ledger_version))
    if version and version > LAYOUT:
        raise LayoutTooNew(
            f"the run ledger under {rt.keys.prefix!r} has layout {version}, newer than this version's {LAYOUT}: "
            "upgrade this process, or drain the runs in flight (let them finish or cancel them) before downgrading"
        )
    return version


def upgrade(rt: Runtime) -> int:
    """Bring every layout-1 run to layout 2 (lifted to 3 by the scripts); return how many open runs were
    given a carrier."""
    r, keys = rt.redis, rt.keys
    version = check_layout(rt)
    if version == LAYOUT:
        return 0
    if version == LIFTS_FROM:
        r.set(keys.ledger_version, LAYOUT)  # every record is lifted where a script meets it
        return 0
    if not r.set(keys.migration_lock, "1", nx=True, ex=300):
        return 0  # another worker is upgrading; it sets the version when done
    try:
        _upgrade_quota_keys(rt)
        waits = _delayed_steps(rt)
        moved = 0
        for raw_id in r.zrange(keys.runs, 0, -1):
            run_id = _text(raw_id)
            if _upgrade_run(rt, run_id, waits.get(run_id)):
                moved += 1
        r.delete(*(f"{keys.prefix}delay:{k}" for k in ("due", "payload", "lease")))
        r.set(keys.ledger_version, LAYOUT)
        if moved:
            log.warning("upgraded %d runs in flight from ledger layout 1 to %s", moved, LAYOUT)
        return moved
    finally:
        r.delete(keys.migration_lock)


class LayoutTooNew(RuntimeError):
    """The ledger was written by a newer version of aep-activator."""


def _delayed_steps(rt: Runtime) -> dict[str, str]:
    """run id -> the step name of its latest layout-1 delay-queue member."""
    out: dict[str, tuple[int, str]] = {}
    for raw in rt.redis.hkeys(f"{rt.keys.prefix}delay:payload"):
        run_id, _, rest = _text(raw).partition(":")
        task, _, retries = rest.rpartition(":")
        step = task.rsplit(".", 1)[-1]
        n = int(retries) if retries.isdigit() else 0
        if step in LAYOUT1_STEPS and n >= out.get(run_id, (-1, ""))[0]:
            out[run_id] = (n, step)
    return {k: v[1] for k, v in out.items()}


def _upgrade_run(rt: Runtime, run_id: str, waiting_at: str | None) -> bool:
    key = rt.keys.run(run_id)
    with rt.redis.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)  # type: ignore[no-untyped-call]
            raw = {_text(k): _text(v) for k, v in pipe.hgetall(key).items()}
            if not raw or raw.get("v") in (LIFTS_FROM, LAYOUT):
                pipe.unwatch()
                return False
            fields, drop = _layout2_fields(rt, run_id, raw, waiting_at)
            open_run = RunStatus(raw.get("status") or "queued") in OPEN
            pipe.multi()
            pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
            if drop:
                pipe.hdel(key, *drop)
            if open_run:
                pipe.zadd(rt.keys.carriers, {run_id: 0})  # due now: the watchdog publishes its step
            pipe.execute()
            return open_run
        except redis.WatchError:
            return False  # someone else upgraded it meanwhile


def _layout2_fields(
    rt: Runtime, run_id: str, raw: dict[str, str], waiting_at: str | None
) -> tuple[dict[str, str | int], list[str]]:
    req = ActivationRequest.model_validate(json.loads(raw.get("request") or "{}"))
    names = [s.name for s in rt.plan.steps_for(req)]
    step = waiting_at or raw.get("step") or ""
    if step not in names:
        index = raw.get("cursor_step")
        step = LAYOUT1_STEPS[int(index)] if index and index.lstrip("-").isdigit() and int(index) >= 0 else names[0]
        step = step if step in names else names[0]
    gen = int(raw.get("generation") or 0)
    holder = run_id if not gen else f"{run_id}#{gen}"
    fields: dict[str, str | int] = {"v": LIFTS_FROM, "step": step, "seq": 1, "gen": gen, "attempt": 0, "carrier": "due",
                              "errors": int(raw.get(f"errors:{step}") or 0)}  # fmt: skip
    if raw.get("error") and not raw.get("failure_kind"):
        fields["failure_kind"] = "bug"  # layout 1 kept only the text; resume starts at the failed step
        fields["failure_step"] = step
    for old, create in _INTENTS.items():
        if raw.get(f"intent:{old}"):
            fields[f"intent:{create}"] = raw[f"intent:{old}"]
    s = rt.settings
    for quota, create in _QUOTA_STEP.items():
        window = raw.get(f"quota:{quota}")
        if window:
            q = Quota(quota)
            committed = rt.keys.quota(quota, scope(q, org_id=s.aep_org_id or "", sandbox=s.aep_sandbox_name),
                                      int(window))  # fmt: skip
            rt.redis.sadd(committed, holder)
            fields[f"spent:{create}"] = json.dumps({"holder": holder, "keys": [committed]})
    drop = [k for k in raw if k.startswith(("cursor_", "errors:", "intent:", "quota:"))
            and k not in fields] + ["chain", "launched", "generation"]  # fmt: skip
    return fields, drop


def _upgrade_quota_keys(rt: Runtime) -> None:
    """Layout-1 quota sets into layout 2's: reservations count as spent; segment-job scopes gain the org."""
    r, prefix = rt.redis, rt.keys.prefix
    org = rt.settings.aep_org_id or ""
    for raw in list(r.scan_iter(match=f"{prefix}quota:*", count=1000)):
        name = _text(raw)
        parts = name.removeprefix(prefix).split(":")
        if len(parts) != 5 or parts[4] not in ("reserved", "committed"):
            continue
        _, quota, old_scope, window, kind = parts
        if kind == "committed" and (quota != "segment_jobs" or "%2F" in old_scope):
            continue  # already a layout-2 key
        scope_text = unquote(old_scope)
        new_scope = f"{org}/{scope_text}" if quota == "segment_jobs" and "/" not in scope_text else scope_text
        target = f"{prefix}quota:{quote(unquote(quota), safe='')}:{quote(new_scope, safe='')}:{window}:committed"
        if kind == "reserved":  # only reservations still live: a lapsed one's POST was never recorded as sent
            now, _ = r.time()
            members = r.zrangebyscore(name, f"({now}", "+inf")
        else:
            members = list(r.smembers(name))
        if members and quota == "segment_jobs":
            # Layout 1 had no yearly quota, but AEP counted these jobs against the year too.
            year_start, _ = YearlyWindow(*rt.step_config.quotas.year_start).containing(float(window))
            yearly = f"{prefix}quota:{YEARLY}:{quote(new_scope, safe='')}:{year_start}:committed"
            r.sadd(yearly, *members)
            r.expire(yearly, 2 * 366 * 86400)
        if members:
            r.sadd(target, *members)
            ttl = r.pttl(name)
            if ttl and ttl > 0:
                r.pexpire(target, max(ttl, int(r.pttl(target) or 0)))
        if target != name:
            r.delete(name)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")

"""The whole Redis key layout, in one place. Every key lives under a prefix (``AEP_KEY_PREFIX``,
default ``aep:``), so the demo, the tests and a real deployment can share one Redis.

Key layout (relative to the prefix)::

    ledger:version                    STRING  layout version of the run ledger (runs.LAYOUT)
    run:{run_id}                      HASH    the run record (fields: runs.py)
    run:{run_id}:long                 HASH    its long fields (request, lines, spent:{step}, flow_runs,
                                              error: run_record.LONG_FIELDS), so the record stays a listpack
    run:{run_id}:timeline             LIST    recent events, JSON, oldest first, trimmed to TIMELINE_MAX
    run:{run_id}:pinned               LIST    pinned events (created, adopted, first error, recoveries,
                                              the end) the timeline trimmed, JSON, oldest first;
                                              absent until the timeline drops one
    runs                              ZSET    run id -> created_at (epoch s); trimmed to RUN_RECORD_TTL_S
    idem:{key}                        STRING  run id of an idempotency key
    status:{status}                   ZSET    run id -> created_at (open statuses) or the time it ended
                                              (terminal ones, trimmed to RUN_RECORD_TTL_S): metrics.py
    metrics                           HASH    counters the metrics are read from (metrics.py)
    callback:{run_id}                 STRING  the run's completion callback: queued | delivered | failed
    carriers                          ZSET    run id -> epoch s at which the watchdog (re)publishes
                                              the run's current step (carriers.py)
    owner:{kind}:{aep_id}             STRING  run id that created or adopted an AEP job or flow run
    quota:{name}:{scope}:{window}:committed
                                      SET     holders ("{run_id}#{generation}") whose POST was sent or
                                              adopted in that window (quota.py)
    line:{name}:{scope}               ZSET    admitted runs' holders that have not spent the quota yet ->
                                              rank (schedules first, then first come): the order they spend in
    lock:audience:{audience}          STRING  owning run id, with a PX expiry (locks.py)
    durations:{kind}:{sandbox}        LIST    seconds recent jobs of a kind took, newest first, trimmed
                                              (durations.py: adaptive polls)
    ims:token:{hash}                  STRING  cached IMS access token (JSON), TTL = its lifetime
    ims:lock:{hash}                   STRING  single-flight refresh lock
    watchdog:lock                     STRING  one migrator at a time (runs.py)
    redbeat:*                         …       RedBeat's schedule and lock (workers/beat.py)

``{name}`` and ``{scope}`` are percent-encoded; ids are used verbatim as the last key segment.
Everything a Lua script touches is passed in KEYS, except the run hashes that ``carriers_pop.lua``
reads for the members it pops, and each record's ``:long`` hash, named from the record's key (a
standalone or Sentinel Redis; not Redis Cluster).
"""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_KEY_PREFIX = "aep:"


class Keys:
    """The key names of one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ledger_version = f"{prefix}ledger:version"
        self.runs = f"{prefix}runs"
        self.carriers = f"{prefix}carriers"
        self.migration_lock = f"{prefix}watchdog:lock"
        self.metrics = f"{prefix}metrics"

    def status(self, status: str) -> str:
        return f"{self.prefix}status:{status}"

    def callback(self, run_id: str) -> str:
        return f"{self.prefix}callback:{run_id}"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def long(self, run_id: str) -> str:
        """The run record's long fields; the scripts name it ``run key .. ':long'`` (lib_run.lua long_of)."""
        return f"{self.run(run_id)}:long"

    def timeline(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}:timeline"

    def pinned(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}:pinned"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}idem:{key}"

    def owner(self, kind: str, aep_id: str) -> str:
        return f"{self.prefix}owner:{kind}:{aep_id}"

    def quota(self, name: str, scope: str, window_start: int) -> str:
        return f"{self.prefix}quota:{quote(name, safe='')}:{quote(scope, safe='')}:{window_start}:committed"

    def line(self, name: str, scope: str) -> str:
        return f"{self.prefix}line:{quote(name, safe='')}:{quote(scope, safe='')}"

    def durations(self, kind: str, sandbox: str) -> str:
        return f"{self.prefix}durations:{quote(kind, safe='')}:{quote(sandbox, safe='')}"

    def audience_lock(self, audience: str) -> str:
        return f"{self.prefix}lock:audience:{audience}"

    def run_lock_v1(self, run_id: str) -> str:
        """The per-run execution lock of layout 1 (migration only)."""
        return f"{self.prefix}run:{run_id}:lock"

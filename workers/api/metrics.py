"""``/metrics``: a prometheus_client custom collector that reads the shared state in Redis at scrape time.

Every figure comes from Redis (aep/coordination/metrics.py for the counters and indexes, the quota
ledger for the quotas), so it is the same whichever worker did the work and however many API replicas
serve it. No value is kept in this process. Labels come from bounded sets (quota names and scopes,
statuses, step names, AEP route templates, methods, HTTP statuses): never an id, a body or a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from aep_activator.aep.coordination.metrics import (
    REQUEST_BUCKETS_S,
    STEP_BUCKETS_S,
    Histogram,
    MetricsStore,
    Snapshot,
    age_s,
)
from aep_activator.aep.coordination.quota import QuotaUsage
from aep_activator.tasks.runtime import Runtime, runtime

RECENT_S = 86400.0
"""``aep_runs`` counts terminal runs that ended within this long (open runs: all of them)."""

QUOTA = ("quota", "scope", "window")


def window_of(usage: QuotaUsage) -> str:
    return "day" if usage.reset_at - usage.window_start <= 86400 else "year"


class RedisCollector(Collector):
    """Reads one deployment's (one key prefix's) figures from Redis on every scrape."""

    def __init__(self, source: Callable[[], Runtime] = runtime) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        from aep_activator.tasks.producer import quota_usage

        rt = self._source()
        snap = MetricsStore(rt.redis, rt.keys).read(queue_keys=rt.queue_keys(), recent_s=RECENT_S)
        yield from quota_metrics(quota_usage(rt))
        yield from run_metrics(snap)
        yield from aep_metrics(snap)


def quota_metrics(usages: list[QuotaUsage]) -> Iterator[Metric]:
    used = GaugeMetricFamily("aep_quota_used", "Slots spent in the current window (sent or adopted POSTs).",
                             labels=QUOTA)  # fmt: skip
    reserved = GaugeMetricFamily("aep_quota_reserved", "Spent slots whose POST outcome is not known yet.",
                                 labels=QUOTA)  # fmt: skip
    limit = GaugeMetricFamily("aep_quota_limit", "Slots allowed per window.", labels=QUOTA)
    reset = GaugeMetricFamily("aep_quota_reset_timestamp_seconds", "When the next window opens (Unix time).",
                              labels=QUOTA)  # fmt: skip
    for u in usages:
        labels = [u.name, u.scope, window_of(u)]
        used.add_metric(labels, u.used)
        reserved.add_metric(labels, u.pending)
        limit.add_metric(labels, u.limit)
        reset.add_metric(labels, u.reset_at)
    yield from (used, reserved, limit, reset)


def run_metrics(snap: Snapshot) -> Iterator[Metric]:
    runs = GaugeMetricFamily("aep_runs", f"Runs by status: open ones, and terminal ones ended in the last "
                             f"{RECENT_S:.0f} s.", labels=["status"])  # fmt: skip
    for status, n in snap.runs.items():
        runs.add_metric([status], n)
    yield runs
    yield GaugeMetricFamily("aep_run_oldest_open_age_seconds", "Age of the oldest open run (0: none open).",
                            value=age_s(snap.now, snap.oldest_open_created_at))  # fmt: skip
    yield GaugeMetricFamily("aep_carrier_overdue_seconds", "How late the most overdue carrier is (0: none due). "
                            "Above WATCHDOG_GRACE_S no watchdog (no worker) is publishing.",
                            value=age_s(snap.now, snap.oldest_due))  # fmt: skip
    yield _histogram("aep_run_step_duration_seconds", "Time a run spent at a step, waits included, per step done.",
                     "step", snap.histograms("step", STEP_BUCKETS_S))  # fmt: skip
    yield _counter("aep_step_executions", "Step executions that ended, by outcome (done, wait, failed, cancelled).",
                   ["step", "outcome"], snap.labelled("exec"))  # fmt: skip
    yield _counter("aep_run_recoveries", "Steps the watchdog published again: rewake (a lost wake-up), recover "
                   "(a dead execution).", ["kind"], snap.labelled("recover"))  # fmt: skip
    yield _counter("aep_run_adoptions", "AEP jobs adopted after a POST whose answer was lost.", ["step"],
                   snap.labelled("adopt"))  # fmt: skip
    yield _counter("aep_conflicts_deferred", "AEP refusals 'Run already going on' that made a run wait.", [],
                   snap.labelled("conflict"))  # fmt: skip
    yield _counter("aep_runs_finished", "Runs that ended, by terminal status.", ["status"], snap.labelled("finish"))
    yield _counter("aep_callbacks", "Completion callbacks: delivered, retried, failed.", ["outcome"],
                   snap.labelled("callback"))  # fmt: skip


def aep_metrics(snap: Snapshot) -> Iterator[Metric]:
    yield _counter("aep_requests", "AEP requests sent by steps, by route template, method and HTTP status "
                   "(error: no answer).", ["route", "method", "status"], snap.labelled("req"))  # fmt: skip
    yield _histogram("aep_request_duration_seconds", "AEP request durations by route template.", "route",
                     snap.histograms("req", REQUEST_BUCKETS_S))  # fmt: skip
    yield GaugeMetricFamily("aep_delay_queue_depth", "Open runs whose carrier is due in the future: waiting on "
                            "AEP, a quota or an audience, or held by a running step.",
                            value=snap.carriers_future)  # fmt: skip
    yield GaugeMetricFamily("aep_open_carriers", "Open runs (every open run has one carrier).",
                            value=snap.carriers_total)  # fmt: skip
    yield GaugeMetricFamily("aep_broker_queue_length", "Messages waiting in the broker queue (AEP_QUEUE).",
                            value=snap.queue_length)  # fmt: skip


def _counter(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    if not labels:
        family.add_metric([], values.get((), 0))
        return family
    for key, n in sorted(values.items()):
        if len(key) == len(labels):
            family.add_metric(list(key), n)
    return family


def _histogram(name: str, doc: str, label: str, values: dict[str, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, h in values.items():
        family.add_metric([value], buckets=[(le, float(n)) for le, n in h.buckets], sum_value=h.sum_s)
    return family


def registry(source: Callable[[], Runtime] = runtime) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(source))
    return reg

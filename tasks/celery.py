"""The Celery application. ``celery -A workers worker`` finds it as ``workers.app`` (a re-export).

Redis is the broker and the result backend. A step's broker message is only a wake-up: the run's
carrier lives in the run ledger (aep/coordination/runs.py) and is written atomically with every
change, so step messages are acknowledged on receipt and store no result. A failed publish, an
exception outside a step's own handler, a soft or hard time limit, or a message lost by kombu between
BRPOP and its unacked record leaves the carrier in place, and the watchdog (tasks/watchdog.py)
publishes the step again. Waits never become ETA messages, and the broker connection has socket
timeouts, so a half-open connection cannot freeze a worker.
"""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery

from aep_activator.config.settings import Settings, SettingsError
from aep_activator.tasks.transport import transport_for
from aep_activator.tasks.watchdog import Watchdog


def celery_config(s: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {
        "visibility_timeout": int(s.visibility_timeout_s),
        "socket_keepalive": True,
        # Without these a half-open connection blocks the consumer (and the watchdog, which runs in
        # the same event loop) until TCP keepalive gives up, about 2 h. kombu's BRPOP waits 1 s.
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        # A killed worker's unacked messages come back once they are older than visibility_timeout, but
        # only when some worker sweeps for them: kombu's default sweep runs every 10 s x 10 ticks. Sweep
        # every tenth of the timeout instead (at most 30 s), so a crash costs about one visibility_timeout.
        "unacked_restore_interval": max(1, min(30, int(s.visibility_timeout_s / 10))),
        "unacked_restore_throttle": 1,
    }
    if s.redis_url.startswith("sentinel://"):  # the settings refuse sentinels:// (no kombu transport)
        transport["master_name"] = _sentinel_master(s.redis_url)
    return {
        "broker_url": s.redis_url,
        # kombu's Redis transport, reusing one client per pool (tasks/transport.py explains why).
        "broker_transport": transport_for(s.redis_url),
        "result_backend": s.redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": int(s.result_expires_s),
        "result_extended": True,
        # Step tasks set acks_late=False and ignore_result=True themselves (tasks/steps.py); these are
        # for activation.start, whose result a producer reads, and which records its run idempotently.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_track_started": True,
        # A publish outlives a Redis restart of a few seconds; beyond that the caller's carrier holds.
        "task_publish_retry_policy": {"max_retries": 10, "interval_start": 0.2, "interval_step": 0.5,
                                      "interval_max": 2.0},
        "task_time_limit": int(s.task_time_limit_s),
        "task_soft_time_limit": int(s.task_time_limit_s * 0.9),
        # No task-sent events: each would be a second publish on the producer's hot path, and Flower
        # learns of every task from the worker's task-received event anyway.
        "task_send_sent_event": False,
        "worker_send_task_events": True,
        "redis_socket_timeout": 15,
        "redis_socket_connect_timeout": 5,
        "worker_prefetch_multiplier": 1,
        # A safety net only: our own waits never become ETA messages (aep/coordination/carriers.py).
        "worker_eta_task_limit": 100,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
        "task_default_queue": s.aep_queue,
        "imports": ["aep_activator.tasks.steps", "aep_activator.tasks.callbacks", "aep_activator.tasks.periodic"],
    }


def _sentinel_master(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(url.split(";")[0]).query)
    return (query.get("master_name") or query.get("service_name") or ["mymaster"])[0]


def _lazy_config() -> dict[str, Any]:
    """The app's configuration, read from the settings on first use of ``app.conf`` (not at import)."""
    from aep_activator.tasks.runtime import current_settings

    try:
        return celery_config(current_settings())
    except SettingsError as exc:
        # `celery -A workers worker` reaches here on its first look at the configuration: say what is
        # wrong and stop, rather than print a traceback.
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = Celery("aep_activator", set_as_current=False)
"""The one Celery app. Configured from the settings lazily (saleor's ``celeryconf.py`` is the model):
importing this module reads no settings, so ``aep-activator --help`` works with any environment."""
app.add_defaults(_lazy_config)
app.steps["worker"].add(Watchdog)


def configure(settings: Settings | None) -> None:
    """Point this process's app and runtime at ``settings`` (tests, the demo, the CLI); None: the environment."""
    from aep_activator.tasks import runtime

    runtime.configure(settings)
    if app.configured:
        app.conf.update(celery_config(runtime.current_settings()))

"""Completion callbacks: when a run ends, POST its terminal status to the URL its request named.

A separate Celery task, never a step: it cannot block or fail one, and its retries are Celery's own
(``self.retry`` with a backoff countdown, at most ``CALLBACK_RETRY_MAX``). The body is JSON and signed
with HMAC-SHA256 over the exact bytes sent, keyed by ``CALLBACK_SECRET``::

    X-AEP-Activator-Signature: sha256=<hex of HMAC-SHA256(secret, body)>
    X-AEP-Activator-Delivery: <run id>.<seq>        (one id per end of a run: dedupe on it)

Once per end of a run: :func:`run_ended` claims ``{prefix}callback:{run_id}.{seq}`` with SET NX before it
enqueues, and the task records ``delivered`` (or ``failed`` after its last retry) there. A worker killed
after a receiver answered 2xx but before that record is written delivers again when the message comes
back (at least once; the delivery id makes the repeat recognisable). A process killed between a run's
end and the enqueue loses that run's callback (its record still shows the end).

Only hosts listed in ``CALLBACK_HOSTS`` are ever called: checked at enqueue (producer.start) and again
here before sending. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from celery import Celery, Task

from aep_activator.aep.coordination.metrics import MetricsStore
from aep_activator.aep.coordination.runs import RunRecord
from aep_activator.aep.pipeline.backoff import backoff
from aep_activator.aep.pipeline.plan import TASK_CALLBACK
from aep_activator.config.settings import Settings
from aep_activator.tasks.celery import app
from aep_activator.tasks.runtime import Runtime, runtime
from aep_activator.tasks.wakeups import PUBLISH_RETRY

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-AEP-Activator-Signature"
DELIVERY_HEADER = "X-AEP-Activator-Delivery"


class CallbackRefused(ValueError):
    """A callback URL whose host is not allowed (``CALLBACK_HOSTS``)."""


def check_url(url: str, s: Settings) -> None:
    """Refuse ``url`` unless it is http(s) to a host of ``CALLBACK_HOSTS`` (and a secret signs it)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackRefused("callback_url: must be an http(s) URL")
    if host not in s.callback_host_list:
        allowed = ", ".join(s.callback_host_list) or "none: CALLBACK_HOSTS is empty"
        raise CallbackRefused(f"callback_url: host {host} is not allowed (CALLBACK_HOSTS: {allowed})")
    if s.callback_secret is None:
        raise CallbackRefused("callback_url: CALLBACK_SECRET is not set, so a callback could not be signed")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(record: RunRecord) -> bytes:
    """The callback's JSON body: the run's end, ids only (never the request's secrets: it has none)."""
    payload: dict[str, Any] = {
        "run_id": record.run_id,
        "status": record.status.value,
        "step": record.step,
        "seq": record.seq,
        "failure_kind": record.failure.kind.value if record.failure else None,
        "error": record.error,
        "segment_job_id": record.segment_job_id,
        "export_job_id": record.export_job_id,
        "flow_runs": [{"run_id": o.get("run_id"), "status": o.get("status")} for o in record.flow_runs],
        "started_by": record.started_by,
        "idempotency_key": record.idempotency_key,
        "created_at": record.created_at,
        "ended_at": record.updated_at,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def run_ended(celery_app: Celery, rt: Runtime, run_id: str) -> bool:
    """Enqueue the run's callback if its request named one and this end has none yet; never raises."""
    try:
        record = rt.ledger.get(run_id, timeline=False)
        url = (record.request.get("callback_url") if record else None) or ""
        if record is None or not url or not record.terminal:
            return False
        delivery = f"{run_id}.{record.seq}"
        if not rt.redis.set(rt.keys.callback(delivery), "queued", nx=True, ex=int(rt.settings.run_record_ttl_s)):
            return False
        celery_app.send_task(TASK_CALLBACK, args=(run_id, record.seq), task_id=f"{run_id}.callback.{record.seq}",
                             queue=rt.settings.aep_queue, retry=True, retry_policy=PUBLISH_RETRY)  # fmt: skip
        return True
    except Exception as exc:  # a callback never fails the step or the cancel that ended the run
        log.warning("run %s: could not enqueue its completion callback: %s", run_id, exc)
        return False


@app.task(bind=True, name=TASK_CALLBACK, acks_late=True, ignore_result=True, max_retries=None)
def deliver(self: Task, run_id: str, seq: int) -> dict[str, Any]:
    """POST the run's end to its callback URL; retried with backoff on a non-2xx answer or no answer."""
    rt = runtime()
    s = rt.settings
    key = rt.keys.callback(f"{run_id}.{seq}")
    state = rt.redis.get(key)
    if state in (b"delivered", b"failed"):
        return {"run_id": run_id, "callback": state.decode()}
    record = rt.ledger.get(run_id, timeline=False)
    url = (record.request.get("callback_url") if record else None) or ""
    metrics = MetricsStore(rt.redis, rt.keys)
    try:
        if record is None:
            raise CallbackRefused("the run record is gone")
        check_url(url, s)
    except CallbackRefused as exc:
        log.error("run %s: callback not sent: %s", run_id, exc)
        rt.redis.set(key, "failed", ex=int(s.run_record_ttl_s))
        metrics.incr("callback|failed")
        return {"run_id": run_id, "callback": "failed"}
    assert s.callback_secret is not None and record is not None
    body = body_of(record)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(s.callback_secret.get_secret_value(), body),
               DELIVERY_HEADER: f"{run_id}.{seq}", "User-Agent": "aep-activator-callback"}  # fmt: skip
    problem = ""
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=(5.0, s.callback_timeout_s),
                             allow_redirects=False)  # fmt: skip
        if 200 <= resp.status_code < 300:
            rt.redis.set(key, "delivered", ex=int(s.run_record_ttl_s))
            metrics.incr("callback|delivered")
            log.info("run %s: callback delivered (%s)", run_id, resp.status_code)
            return {"run_id": run_id, "callback": "delivered"}
        problem = f"answered {resp.status_code}"
    except requests.RequestException as exc:
        problem = f"no answer ({type(exc).__name__})"
    if self.request.retries >= s.callback_retry_max:
        log.error("run %s: callback %s; giving up after %d retries", run_id, problem, self.request.retries)
        rt.redis.set(key, "failed", ex=int(s.run_record_ttl_s))
        metrics.incr("callback|failed")
        return {"run_id": run_id, "callback": "failed"}
    delay = backoff(self.request.retries, s.callback_retry_initial_s, 2.0, min(300.0, s.visibility_timeout_s / 2),
                    jitter=0.2)  # fmt: skip
    metrics.incr("callback|retried")
    log.warning("run %s: callback %s; retry %d in %.1fs", run_id, problem, self.request.retries + 1, delay)
    raise self.retry(countdown=delay)

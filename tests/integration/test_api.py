"""The HTTP API against a real worker, Redis and the simulator: each route, auth and roles, bad bodies,
the Idempotency-Key header, the audit entries, and signed completion callbacks retried after a 500."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.devstack.stack import Stack
from aep_activator.tasks import runtime
from aep_activator.tasks.celery import configure
from aep_activator.tasks.producer import cancel_run
from aep_activator.workers.api import create_app
from aep_activator.workers.api.keys import KeyRing, new_key

pytestmark = pytest.mark.integration

FLOW = "b0780cb5-2bb7-4409-bf2c-c625ca818588"
AUDIENCE = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
OTHER_AUDIENCE = "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"
UNMAPPED = "3a1b2c3d-4e5f-6789-abcd-ef0123456789"  # not mapped to FLOW: AEP refuses, the run fails
SECRET = "callback-secret-for-tests"


def v2(audience: str = AUDIENCE, **extra: Any) -> dict[str, Any]:
    return {"activation_info": {FLOW: [audience]}, "version": 2, "segment_job": False, **extra}


@dataclass
class Receiver:
    """A callback endpoint on loopback that answers 500 to the first ``fail_first`` POSTs, then 200."""

    fail_first: int = 1
    seen: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if len(receiver.seen) < receiver.fail_first else 200
                receiver.seen.append((status, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Api:
    stack: Stack
    client: TestClient
    ops: dict[str, str]
    producer: dict[str, str]


@pytest.fixture(scope="module")
def api(redis_url: str) -> Iterator[Api]:
    ops_key, ops_entry = new_key("ops1", "ops")
    producer_key, producer_entry = new_key("billing", "producer")
    env = {"CALLBACK_HOSTS": "127.0.0.1", "CALLBACK_SECRET": SECRET, "CALLBACK_RETRY_INITIAL_S": "0.3",
           "API_KEYS": f"{ops_entry},{producer_entry}"}  # fmt: skip
    stack = Stack.start(redis_url, sim_config=SimulatorConfig(speed=600, seed=12), env=env)
    try:
        configure(stack.settings())
        stack.wait_worker_ready(stack.start_worker(concurrency=2))
        app = create_app(KeyRing.parse(f"{ops_entry},{producer_entry}"))
        with TestClient(app) as client:
            yield Api(stack, client, {"Authorization": f"Bearer {ops_key}"}, {"X-API-Key": producer_key})
    finally:
        stack.stop()
        runtime.configure(None)


def wait_terminal(api: Api, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = api.client.get(f"/v1/runs/{run_id}", headers=api.producer).json()
        if run["terminal"]:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.1)


def recorded_runs(api: Api) -> int:
    rt = runtime.runtime()
    return int(rt.redis.zcard(rt.keys.runs))


def test_healthz_is_the_only_route_open_without_a_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"ok": True, "redis": "ok"}
    routes = [("GET", "/v1/runs"), ("POST", "/v1/runs"), ("GET", "/v1/runs/x"), ("POST", "/v1/runs/x/cancel"),
              ("POST", "/v1/runs/x/resume"), ("GET", "/v1/quota"), ("GET", "/metrics"), ("GET", "/docs"),
              ("GET", "/openapi.json")]  # fmt: skip
    for method, path in routes:
        for headers, message in (({}, "an API key is required"), ({"X-API-Key": "nope"}, "invalid API key"),
                                 ({"Authorization": "Bearer aepk_wrong"}, "invalid API key")):  # fmt: skip
            r = api.client.request(method, path, headers=headers, json=v2() if method == "POST" else None)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"].startswith(message)
            assert r.headers["www-authenticate"] == "Bearer"
    page = api.client.get("/console/runs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
    for printed in ("/", "/console", "/console/"):  # the README and the api banner print /console
        entry = api.client.get(printed, follow_redirects=False)
        assert (entry.status_code, entry.headers["location"]) == (303, "/console/runs"), printed


def test_a_run_started_over_http_succeeds_and_is_read_listed_and_counted(api: Api) -> None:
    r = api.client.post("/v1/runs", json=v2(), headers=api.producer)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["verdict"] == "created" and created["admission"]["verdict"] == "now"
    assert created["url"] == f"/v1/runs/{created['run_id']}"
    run = wait_terminal(api, created["run_id"])
    assert run["status"] == "succeeded"
    assert run["started_by"] == "api:billing"
    assert run["aep_ids"]["flow_run_ids"] and run["aep_ids"]["flow_run_ids"] == [o["run_id"] for o in run["flow_runs"]]
    assert run["timeline"][0]["event"] == "created"
    assert run["timeline"][-1]["event"] == "succeeded"
    listed = api.client.get("/v1/runs", params={"status": "succeeded", "limit": 5}, headers=api.producer).json()
    assert created["run_id"] in [x["run_id"] for x in listed["runs"]]
    assert all(x["status"] == "succeeded" for x in listed["runs"])
    assert api.client.get("/v1/runs", params={"sandbox": "stage"}, headers=api.producer).json() == {"runs": []}
    assert created["run_id"] in [x["run_id"] for x in api.client.get(
        "/v1/runs", params={"sandbox": "prod"}, headers=api.producer).json()["runs"]]  # fmt: skip
    quotas = {q["quota"]: q for q in api.client.get("/v1/quota", headers=api.producer).json()["quotas"]}
    assert quotas["adhoc"]["used"] >= 1 and quotas["adhoc"]["limit"] == 20
    metrics = api.client.get("/metrics", headers=api.producer)
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'aep_runs{status="succeeded"}' in metrics.text
    assert api.client.get("/v1/runs/nope", headers=api.producer).status_code == 404


def test_bad_bodies_get_422_naming_every_bad_field_and_nothing_is_enqueued(api: Api) -> None:
    before = recorded_runs(api)
    r = api.client.post("/v1/runs", headers=api.producer, json={
        "activation_info": {FLOW: []}, "version": 3, "on_quota": "later", "surprise": 1})  # fmt: skip
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid activation request"
    fields = {f["field"] for f in body["fields"]}
    assert {"version", "on_quota", "surprise"} <= fields, body
    assert "later" not in r.text  # input values are not echoed
    for bad in ([1, 2], "not json", {"activation_info": {FLOW: [AUDIENCE]}, "version": 1}):
        data = bad if isinstance(bad, str) else json.dumps(bad)
        r = api.client.post("/v1/runs", headers={**api.producer, "Content-Type": "application/json"}, content=data)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["fields"], r.text
    r = api.client.post("/v1/runs", json=v2(), headers={**api.producer, "Idempotency-Key": " "})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "idempotency_key"
    assert api.client.get("/v1/runs", params={"limit": 0}, headers=api.producer).status_code == 422
    assert recorded_runs(api) == before
    rt = runtime.runtime()
    assert sum(int(rt.redis.llen(k)) for k in rt.queue_keys()) == 0


def test_the_idempotency_key_header_returns_the_same_run(api: Api) -> None:
    headers = {**api.producer, "Idempotency-Key": "nightly-2026-01-01"}
    first = api.client.post("/v1/runs", json=v2(OTHER_AUDIENCE), headers=headers)
    second = api.client.post("/v1/runs", json=v2(OTHER_AUDIENCE), headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["run_id"] == second.json()["run_id"]
    assert second.json()["verdict"] == "existing"
    run = wait_terminal(api, first.json()["run_id"])
    assert run["idempotency_key"] == "nightly-2026-01-01"
    clash = api.client.post("/v1/runs", json=v2(idempotency_key="other"), headers=headers)
    assert clash.status_code == 422 and clash.json()["fields"][0]["field"] == "idempotency_key"
    # The same key with another request (another audience) is refused, naming the run that owns the key,
    # and starts nothing; the same request from another caller (started_by) is the same run.
    before = recorded_runs(api)
    reused = api.client.post("/v1/runs", json=v2(AUDIENCE), headers=headers)
    assert reused.status_code == 422, reused.text
    field = reused.json()["fields"][0]
    assert field["field"] == "idempotency_key", field
    assert first.json()["run_id"] in field["message"] and "activation_info" in field["message"], field
    again = api.client.post("/v1/runs", json=v2(OTHER_AUDIENCE, started_by="nightly"),
                            headers={**api.ops, "Idempotency-Key": "nightly-2026-01-01"})  # fmt: skip
    assert (again.status_code, again.json()["run_id"]) == (200, first.json()["run_id"]), again.text
    assert recorded_runs(api) == before


def test_a_producer_key_cannot_cancel_or_resume_and_an_ops_cancel_and_resume_are_audited(api: Api) -> None:
    failing = api.client.post("/v1/runs", json=v2(UNMAPPED), headers=api.producer).json()["run_id"]
    run = wait_terminal(api, failing)
    assert run["status"] == "failed", run
    for action in ("cancel", "resume"):
        r = api.client.post(f"/v1/runs/{failing}/{action}", headers=api.producer)
        assert r.status_code == 403
        assert "role ops" in r.json()["error"]
    resumed = api.client.post(f"/v1/runs/{failing}/resume", headers=api.ops)
    assert resumed.status_code == 200, resumed.text
    timeline = resumed.json()["timeline"]
    assert any(e["event"] == "resumed" and e["detail"].endswith("by api:ops1 (ops)") for e in timeline)
    wait_terminal(api, failing)
    assert api.client.post(f"/v1/runs/{failing}/cancel", headers=api.ops).status_code == 409
    assert api.client.post("/v1/runs/nope/cancel", headers=api.ops).status_code == 404

    # An open run (its segment job still processing) is cancelled by an ops key: the timeline names it.
    rt = runtime.runtime()
    slow = api.client.post("/v1/runs", json=v2(OTHER_AUDIENCE, segment_job=True), headers=api.producer)
    run_id = slow.json()["run_id"]
    cancelled = api.client.post(f"/v1/runs/{run_id}/cancel", headers=api.ops)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    events = [e for e in cancelled.json()["timeline"] if e["event"] == "cancelled"]
    assert events and events[0]["detail"].startswith("cancelled by api:ops1 (ops)")
    assert rt.ledger.get(run_id) is not None


def test_a_callback_is_signed_retried_after_a_500_and_delivered_once(api: Api) -> None:
    receiver = Receiver(fail_first=1)
    url = receiver.start()
    try:
        r = api.client.post("/v1/runs", json=v2(callback_url=url), headers=api.producer)
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        wait_terminal(api, run_id)
        rt = runtime.runtime()
        deadline = time.monotonic() + 30
        while not any(status == 200 for status, _, _ in receiver.seen):
            assert time.monotonic() < deadline, receiver.seen
            time.sleep(0.1)
        time.sleep(1.5)  # room for a duplicate to arrive, if there were one
        assert [status for status, _, _ in receiver.seen] == [500, 200]
        for _, headers, body in receiver.seen:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["X-AEP-Activator-Signature"], expected)
            sent = json.loads(body)
            assert (sent["run_id"], sent["status"]) == (run_id, "succeeded")
            assert headers["X-AEP-Activator-Delivery"] == f"{run_id}.{sent['seq']}"
        assert SECRET not in receiver.seen[-1][2].decode()
        assert rt.redis.get(rt.keys.callback(f"{run_id}.{sent['seq']}")) == b"delivered"
        from aep_activator.tasks.callbacks import run_ended
        from aep_activator.tasks.celery import app

        assert run_ended(app, rt, run_id) is False  # this end's callback is claimed: never sent twice
        counters = rt.redis.hgetall(rt.keys.metrics)
        assert int(counters[b"callback|delivered"]) >= 1 and int(counters[b"callback|retried"]) >= 1
    finally:
        receiver.stop()


def test_a_cancelled_run_sends_its_callback_from_the_cancelling_process(api: Api) -> None:
    receiver = Receiver(fail_first=0)
    url = receiver.start()
    try:
        run_id = api.client.post("/v1/runs", json=v2(OTHER_AUDIENCE, segment_job=True, callback_url=url),
                                 headers=api.producer).json()["run_id"]  # fmt: skip
        cancel_run(run_id, actor="cli")
        deadline = time.monotonic() + 30
        while not receiver.seen:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert json.loads(receiver.seen[0][2])["status"] == "cancelled"
    finally:
        receiver.stop()


def test_a_callback_host_outside_the_allow_list_is_refused_at_enqueue(api: Api) -> None:
    before = recorded_runs(api)
    for url, why in (("https://hooks.example.com/x", "host hooks.example.com is not allowed"),
                     ("http://169.254.169.254/latest", "host 169.254.169.254 is not allowed"),
                     ("ftp://127.0.0.1/x", "must be an http(s) URL"),
                     ("http://user:pw@127.0.0.1/x", "must not carry credentials")):  # fmt: skip
        r = api.client.post("/v1/runs", json=v2(callback_url=url), headers=api.producer)
        assert r.status_code == 422, r.text
        assert r.json()["fields"][0]["field"] == "callback_url"
        assert why in r.json()["fields"][0]["message"]
    assert recorded_runs(api) == before


def test_a_used_up_quota_with_on_quota_fail_answers_429_with_retry_after(api: Api) -> None:
    rt = runtime.runtime()
    from aep_activator.tasks.producer import quota_usage

    seg = next(u for u in quota_usage() if u.name == "segment_jobs")
    key = rt.keys.quota(seg.name, seg.scope, seg.window_start)
    rt.redis.sadd(key, *[f"filler-{i}" for i in range(seg.limit)])
    try:
        r = api.client.post("/v1/runs", json=v2(segment_job=True, on_quota="fail"), headers=api.producer)
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) > 0 and r.json()["quota"] == "segment_jobs"
    finally:
        rt.redis.srem(key, *[f"filler-{i}" for i in range(seg.limit)])


def test_the_console_shows_runs_and_quotas_to_a_signed_in_key(api: Api) -> None:
    login = api.client.post("/console/login", data={"key": "wrong", "next": "/console/runs"}, follow_redirects=False)
    assert "failed=1" in login.headers["location"]
    key = api.ops["Authorization"].split(" ", 1)[1]
    login = api.client.post("/console/login", data={"key": key, "next": "https://evil.example/"},
                            follow_redirects=False)  # fmt: skip
    assert login.headers["location"] == "/console/runs"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = api.client.get("/console/runs")
    assert page.status_code == 200 and "Recent runs" in page.text and "adhoc" in page.text
    api.client.cookies.clear()


def test_redis_metrics_counters_are_plain_integers_under_the_prefix(api: Api) -> None:
    rt = runtime.runtime()
    assert rt.redis.type(rt.keys.metrics) == b"hash"
    assert all(int(v) >= 0 for v in rt.redis.hvals(rt.keys.metrics))
    assert isinstance(rt.redis, redis.Redis)

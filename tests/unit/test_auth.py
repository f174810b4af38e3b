"""aep/auth.py: IMS tokens, fetched from a real (tiny) IMS over HTTP and shared through real Redis.

The IMS stub is a ``ThreadingHTTPServer`` answering ``POST /ims/token/v3`` the way S-S2S-IMS documents
it (form-encoded request, ``{"access_token", "token_type", "expires_in"}`` answer, seconds), with a
unique token per call and a call counter.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis
from pydantic import SecretStr

from aep_activator.aep.api.auth import IMSTokenProvider, StaticToken, TokenRefreshBusy
from aep_activator.aep.api.errors import AuthError, RateLimited, TransientError
from aep_activator.aep.coordination.tokens import RedisTokenCache

CLIENT_ID = "test-client-id"
SECRET = "p8e-SECRET-do-not-leak-0123456789"
SCOPES = "openid,AdobeID,read_organizations"


class IMSStub:
    """A tiny IMS. Set ``status``/``body``/``expires_in``/``delay_s`` to change what it answers."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        self.status = 200
        self.body: bytes | None = None  # None: a fresh token answer
        self.expires_in = 86399
        self.delay_s = 0.0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                with stub._lock:
                    stub.calls.append(
                        {
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "form": {k: v[0] for k, v in parse_qs(raw).items()},
                        }
                    )
                time.sleep(stub.delay_s)
                if stub.body is not None:
                    payload = stub.body
                else:
                    token = f"tok-{uuid.uuid4().hex}"
                    with stub._lock:
                        stub.tokens.append(token)
                    payload = json.dumps(
                        {"access_token": token, "token_type": "bearer", "expires_in": stub.expires_in}
                    ).encode()
                if self.path != "/ims/token/v3":
                    self.send_response(404)
                    payload = b"{}"
                else:
                    self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> IMSStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ims() -> Iterator[IMSStub]:
    with IMSStub() as stub:
        yield stub


@pytest.fixture
def make_provider(
    ims: IMSStub, redis_client: redis.Redis, key_prefix: str
) -> Iterator[Callable[..., IMSTokenProvider]]:
    providers: list[IMSTokenProvider] = []

    def make(**kw: Any) -> IMSTokenProvider:
        args: dict[str, Any] = {
            "ims_url": ims.url,
            "client_id": CLIENT_ID,
            "client_secret": SecretStr(SECRET),
            "scopes": SCOPES,
            "timeout": (2.0, 5.0),
        }
        args.update(kw)
        org_id = args.pop("org_id", "")
        args["cache"] = RedisTokenCache(redis_client, key_prefix, client_id=args["client_id"], scopes=args["scopes"],
                                        ims_url=args["ims_url"], org_id=org_id)  # fmt: skip
        provider = IMSTokenProvider(**args)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider._session.close()


def _keys(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=prefix + "*"))


# ------------------------------------------------------------------------------------------------
# Caching


def test_a_token_is_fetched_once_then_reused_from_redis(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis, key_prefix: str
) -> None:
    provider = make_provider()
    tokens = {provider.token() for _ in range(25)}
    assert tokens == {ims.tokens[0]}
    assert len(ims.calls) == 1
    assert provider.fetches == 1
    (key,) = _keys(redis_client, key_prefix)  # the lock is gone, only the token remains
    assert key.startswith(f"{key_prefix}ims:token:")
    assert 86390_000 < redis_client.pttl(key) <= 86399_000


def test_a_token_of_another_ims_host_or_org_is_not_reused_after_the_settings_change(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis, key_prefix: str
) -> None:
    first = make_provider(org_id="AAA@AdobeOrg").token()
    # The same stub under another host name stands for a changed AEP_IMS_URL.
    other_host = make_provider(org_id="AAA@AdobeOrg", ims_url=ims.url.replace("127.0.0.1", "localhost")).token()
    other_org = make_provider(org_id="BBB@AdobeOrg").token()
    same = make_provider(org_id="AAA@AdobeOrg").token()
    assert len(ims.calls) == 3
    assert len({first, other_host, other_org}) == 3 and same == first
    assert len([k for k in _keys(redis_client, key_prefix) if ":ims:token:" in k]) == 3


def test_the_token_request_is_the_documented_client_credentials_form(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    make_provider().token()
    (call,) = ims.calls
    assert call["path"] == "/ims/token/v3"
    assert call["content_type"] == "application/x-www-form-urlencoded"
    assert call["form"] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": SCOPES,
    }


def test_another_provider_on_the_same_redis_reuses_the_cached_token(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    first = make_provider().token()
    second = make_provider()
    assert second.token() == first
    assert second.fetches == 0
    assert len(ims.calls) == 1


def test_a_different_client_id_or_scope_gets_its_own_token(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    a = make_provider().token()
    b = make_provider(scopes="openid").token()
    c = make_provider(client_id="other-client").token()
    assert len({a, b, c}) == 3
    assert len(ims.calls) == 3


def test_a_trailing_slash_on_the_ims_url_is_harmless(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    make_provider(ims_url=ims.url + "/").token()
    assert ims.calls[0]["path"] == "/ims/token/v3"


def test_a_corrupt_cache_entry_is_replaced_by_a_fresh_token(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis
) -> None:
    # Each read is by a new provider, as another process would read it: a provider keeps its own copy.
    provider = make_provider()
    provider.token()
    redis_client.set(provider.cache.key, b"not json")
    assert make_provider().token() == ims.tokens[1]
    redis_client.set(provider.cache.key, json.dumps({"access_token": "x"}))
    assert make_provider().token() == ims.tokens[2]


def test_a_provider_reuses_its_own_copy_without_reading_redis(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis
) -> None:
    provider = make_provider()
    first = provider.token()
    redis_client.delete(provider.cache.key)
    assert provider.token() == first and len(ims.tokens) == 1
    provider.invalidate(first)
    assert provider.token() == ims.tokens[1]


# ------------------------------------------------------------------------------------------------
# Refresh timing


def test_the_token_is_refreshed_once_within_the_refresh_margin_of_expiry(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    clock = FakeClock()
    ims.expires_in = 3600
    provider = make_provider(clock=clock, refresh_margin_s=600.0)
    first = provider.token()
    clock.now += 3600 - 600 - 0.001  # just outside the margin: still the cached token
    assert provider.token() == first
    assert len(ims.calls) == 1
    clock.now += 0.001  # exactly refresh_margin_s before expiry: refresh
    second = provider.token()
    assert second != first
    assert len(ims.calls) == 2
    for _ in range(5):  # and only once
        assert provider.token() == second
    assert len(ims.calls) == 2


def test_while_another_process_refreshes_a_still_valid_token_is_served(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis
) -> None:
    clock = FakeClock()
    ims.expires_in = 3600
    provider = make_provider(clock=clock, refresh_margin_s=600.0)
    first = provider.token()
    clock.now += 3300  # inside the margin, not expired
    redis_client.set(provider.cache.lock_key, "someone-else", px=30_000)
    assert provider.token() == first
    assert len(ims.calls) == 1


def test_without_a_valid_token_a_process_that_loses_the_lock_is_told_to_retry(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis
) -> None:
    provider = make_provider()
    redis_client.set(provider.cache.lock_key, "someone-else", px=30_000)
    with pytest.raises(TokenRefreshBusy) as info:
        provider.token()
    assert isinstance(info.value, RateLimited)
    assert info.value.retry_after_s == 1.0
    assert pickle.loads(pickle.dumps(info.value)).retry_after_s == 1.0
    assert ims.calls == []
    # The other holder's lock is untouched: only the holder may release it.
    assert redis_client.get(provider.cache.lock_key) == b"someone-else"


def test_an_expired_token_is_not_served_even_while_the_lock_is_held(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis
) -> None:
    clock = FakeClock()
    ims.expires_in = 3600
    provider = make_provider(clock=clock, refresh_margin_s=600.0)
    provider.token()
    clock.now += 3600
    redis_client.set(provider.cache.lock_key, "someone-else", px=30_000)
    with pytest.raises(TokenRefreshBusy):
        provider.token()


def test_the_refresh_lock_is_released_after_success_and_after_failure(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], redis_client: redis.Redis
) -> None:
    provider = make_provider()
    provider.token()
    assert redis_client.exists(provider.cache.lock_key) == 0
    ims.status = 503
    provider.invalidate(provider.token())
    with pytest.raises(TransientError):
        provider.token()
    assert redis_client.exists(provider.cache.lock_key) == 0


# ------------------------------------------------------------------------------------------------
# Several processes


def _token_in_child(
    ims_url: str, redis_url: str, prefix: str, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a spawned process
    client = redis.Redis.from_url(redis_url)
    provider = IMSTokenProvider(
        ims_url=ims_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(SECRET),
        scopes=SCOPES,
        cache=RedisTokenCache(client, prefix, client_id=CLIENT_ID, scopes=SCOPES),
        timeout=(5.0, 10.0),
    )
    results.put("ready")
    start.wait(30)
    busy = 0
    deadline = time.monotonic() + 20
    while True:
        try:
            token = provider.token()
            break
        except TokenRefreshBusy:
            busy += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    results.put((token, busy, provider.fetches))


def test_separate_processes_share_one_token_and_call_ims_exactly_once(
    ims: IMSStub, redis_url: str, key_prefix: str
) -> None:
    ims.delay_s = 0.5  # a slow IMS: every process asks while the first fetch is in flight
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_token_in_child, args=(ims.url, redis_url, key_prefix, start, results))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    try:
        assert [results.get(timeout=30) for _ in procs] == ["ready"] * len(procs)
        start.set()
        answers = [results.get(timeout=30) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    assert len(ims.calls) == 1
    assert {token for token, _, _ in answers} == {ims.tokens[0]}
    assert sum(fetches for _, _, fetches in answers) == 1
    # The losers really did contend: they were told to retry while the winner was fetching.
    assert sum(busy for _, busy, _ in answers) >= 1


# ------------------------------------------------------------------------------------------------
# invalidate


def test_invalidate_drops_only_the_token_it_names(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    provider = make_provider()
    first = provider.token()
    provider.invalidate("some-older-token")
    assert provider.token() == first
    assert len(ims.calls) == 1
    provider.invalidate(first)
    second = provider.token()
    assert second != first
    assert len(ims.calls) == 2
    provider.invalidate(first)  # a stale 401 for the old token does not drop the new one
    assert provider.token() == second
    assert len(ims.calls) == 2


def test_invalidate_with_nothing_cached_does_nothing(make_provider: Callable[..., IMSTokenProvider]) -> None:
    make_provider().invalidate("anything")


# ------------------------------------------------------------------------------------------------
# IMS failures


@pytest.mark.parametrize("status", [400, 401, 403])
def test_ims_refusing_the_credentials_is_an_auth_error_without_the_secret(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], status: int
) -> None:
    ims.status = status
    # A hostile or careless IMS echoes the secret back; it must not reach the message.
    ims.body = json.dumps(
        {"error": "invalid_client", "error_description": f"invalid client_secret parameter: {SECRET}"}
    ).encode()
    with pytest.raises(AuthError) as info:
        make_provider().token()
    err = info.value
    assert err.status == status
    assert "invalid_client" in str(err)
    assert SECRET not in str(err)
    assert SECRET not in repr(err)
    assert SECRET not in pickle.dumps(err).decode("latin-1")
    assert err.__cause__ is None
    assert err.__context__ is None


def test_an_ims_refusal_without_a_json_body_names_the_status(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider]
) -> None:
    ims.status = 401
    ims.body = b"<html>Unauthorized</html>"
    with pytest.raises(AuthError, match=r"IMS refused the credentials \(HTTP 401\)"):
        make_provider().token()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_ims_server_errors_are_transient(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], status: int
) -> None:
    ims.status = status
    ims.body = b"{}"
    with pytest.raises(TransientError) as info:
        make_provider().token()
    assert not isinstance(info.value, AuthError)
    assert info.value.status == status


@pytest.mark.parametrize(
    "body",
    [
        b"<html>ok</html>",
        b"{}",
        b'{"access_token": "", "expires_in": 10}',
        b'{"access_token": "t", "expires_in": 0}',
    ],
)
def test_an_ims_200_without_a_usable_token_is_an_auth_error_and_caches_nothing(
    ims: IMSStub,
    make_provider: Callable[..., IMSTokenProvider],
    redis_client: redis.Redis,
    key_prefix: str,
    body: bytes,
) -> None:
    ims.body = body
    with pytest.raises(AuthError, match="without a usable token"):
        make_provider().token()
    assert _keys(redis_client, key_prefix) == []


def test_an_unreachable_ims_is_transient(make_provider: Callable[..., IMSTokenProvider]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError) as info:
        make_provider(ims_url=f"http://127.0.0.1:{port}").token()
    assert SECRET not in str(info.value)


# ------------------------------------------------------------------------------------------------
# Secrets stay secret


def test_secrets_and_tokens_never_reach_repr_exceptions_or_logs(
    ims: IMSStub, make_provider: Callable[..., IMSTokenProvider], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    provider = make_provider()
    token = provider.token()
    provider.invalidate(token)
    provider.token()
    ims.status = 401
    ims.body = json.dumps({"error": "invalid_client", "error_description": SECRET}).encode()
    provider.invalidate(ims.tokens[-1])
    with pytest.raises(AuthError) as info:
        provider.token()
    assert any("urllib3" in r.name for r in caplog.records)  # the capture did see the HTTP traffic
    texts = [repr(provider), str(provider), str(info.value), repr(info.value), caplog.text]
    texts += [str(r.args) for r in caplog.records]
    for text in texts:
        assert SECRET not in text
        for t in ims.tokens:
            assert t not in text
    assert CLIENT_ID in repr(provider)  # not a secret, and useful


def test_a_static_token_is_returned_as_is_and_masked_in_repr() -> None:
    static = StaticToken(SecretStr("static-token-value"))
    assert static.token() == "static-token-value"
    static.invalidate("static-token-value")  # cannot be refreshed: a no-op
    assert static.token() == "static-token-value"
    assert "static-token-value" not in repr(static)
    assert repr(static) == "StaticToken(**********)"

"""The simulator over real HTTP: a Tornado adapter for the framework-free dispatch (``aepsim.api``).
The only module of the simulator that imports Tornado.

Start it in-process with ``SimulatorServer(config).start_in_thread()`` (returns the base URL; the
server runs its own asyncio loop in a daemon thread; ``stop()`` ends it), or from a shell with
``run_simulator_cli`` / ``serve_forever``. It binds 127.0.0.1 unless told otherwise. Point the
client's AEP base URL *and* IMS URL at the returned base URL.

How it realises an ``Outcome``: added latency is a real (non-blocking) wait *before* the action, as
the dispatch's order says; ``drop`` closes the connection without sending a byte; ``hang`` holds
the connection ``hang_s`` (the action has run) and then closes it without an answer. ``stop()``
wakes every wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import tornado.httpserver
import tornado.netutil
import tornado.web

from aep_activator.aepsim.api import Dispatcher, Headers, Request, SimContext, make_dispatcher
from aep_activator.aepsim.config import FaultSettings, SimulatorConfig
from aep_activator.aepsim.state import SimulatorState
from aep_activator.aepsim.state.clock import Clock, SystemClock
from aep_activator.aepsim.state.fixture import Fixture

_access_log = logging.getLogger("aep_activator.aepsim.access")


class _Waits:
    """Non-blocking waits that all end early once the server shuts down."""

    def __init__(self) -> None:
        self._closing: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._closing is None:
            self._closing = asyncio.Event()
        return self._closing

    async def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event().wait(), timeout=seconds)

    def begin_shutdown(self) -> None:
        """Wake every ``pause``; call on the server's loop."""
        self._event().set()


class _Handler(tornado.web.RequestHandler):
    """Every path and method goes to the dispatcher."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

    def initialize(self, dispatcher: Dispatcher, waits: _Waits) -> None:
        self.dispatcher = dispatcher
        self.waits = waits

    def check_xsrf_cookie(self) -> None:
        return None

    async def get(self) -> None:
        await self._serve()

    post = put = patch = delete = head = options = get

    async def _serve(self) -> None:
        r = self.request
        request = Request(
            method=r.method or "GET",
            path=r.path,
            query={k: [v.decode(errors="replace") for v in vs] for k, vs in r.query_arguments.items()},
            headers=Headers(dict(r.headers)),
            body=r.body or b"",
            base_url=f"{r.protocol}://{r.host}",
        )
        admission = self.dispatcher.admit(request)
        await self.waits.pause(admission.latency_s)
        outcome = self.dispatcher.run(admission)
        if outcome.kind == "hang":
            await self.waits.pause(outcome.hang_s)
        if outcome.kind in ("drop", "hang") or outcome.reply is None:
            # detach() stops Tornado's HTTP processing, so closing the stream sends no bytes at all.
            self.detach().close()
            return
        reply = outcome.reply
        self.set_status(reply.status)
        for name, value in reply.all_headers().items():
            self.set_header(name, value)
        content = reply.content()
        if content:
            self.finish(content)
        else:
            self.finish()


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Debug level: injected 4xx/5xx are the point of the simulator, not warnings. The journal has it all.
    request = handler.request
    _access_log.debug(
        "%d %s %s %.1fms", handler.get_status(), request.method, request.path, 1000 * request.request_time()
    )


def make_app(ctx: SimContext, waits: _Waits) -> tornado.web.Application:
    """The Tornado application serving every route of ``ctx``."""
    args = {"dispatcher": make_dispatcher(ctx), "waits": waits}
    return tornado.web.Application([(r"/.*", _Handler, args)], log_function=_log_request)


class SimulatorServer:
    """One simulator: state, journal, tokens and faults behind a Tornado server."""

    def __init__(
        self, config: SimulatorConfig | None = None, clock: Clock | None = None, fixture: Fixture | None = None
    ) -> None:
        self.ctx = SimContext(config or SimulatorConfig(), clock or SystemClock(), fixture)
        self.base_url: str | None = None
        self._waits = _Waits()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: tornado.httpserver.HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SimulatorState:
        return self.ctx.state

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port) from a daemon thread; returns the base URL."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        sockets = tornado.netutil.bind_sockets(port, host)
        bound = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._http = tornado.httpserver.HTTPServer(make_app(self.ctx, self._waits))
            self._http.add_sockets(sockets)
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="aep-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving: wake hung requests, close every connection, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        self._loop = self._thread = self._http = None

    async def _shutdown(self) -> None:
        self._waits.begin_shutdown()
        if self._http is not None:
            self._http.stop()
            # Let woken handlers finish closing their streams before the connections are closed.
            await asyncio.sleep(0)
            await self._http.close_all_connections()

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve(host: str, port: int, config: SimulatorConfig, clock: Clock | None = None) -> None:
    """Serve on the current loop until cancelled."""
    ctx = SimContext(config, clock or SystemClock())
    waits = _Waits()
    http = tornado.httpserver.HTTPServer(make_app(ctx, waits))
    http.listen(port, host)
    try:
        await asyncio.Event().wait()
    finally:
        waits.begin_shutdown()
        http.stop()
        await http.close_all_connections()


def serve_forever(host: str, port: int, config: SimulatorConfig) -> None:
    """Serve until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, config))


def run_simulator_cli(
    host: str, port: int, speed: float, fault_rate: float, seed: int | None, fixture: str | None
) -> None:
    """The ``aep-activator simulator`` command: print the base URL and env vars, serve until Ctrl-C.

    ``fault_rate`` is the global share of AEP requests answered with an injected error, split evenly
    between 5xx and 429.
    """
    config = SimulatorConfig(
        speed=speed,
        seed=seed,
        fixture_path=fixture,
        faults=FaultSettings(error_5xx_rate=fault_rate / 2, rate_429=fault_rate / 2),
    )
    ctx = SimContext(config, SystemClock())  # only to read the credentials the server will accept
    client = ctx.state.fixture.clients[0]
    base = f"http://{host}:{port}"
    print(f"AEP simulator listening on {base} (speed x{speed}, fault rate {fault_rate}, seed {seed})")
    print("Use these settings:")
    print(f"  export AEP_BASE_URL={base}")
    print(f"  export AEP_IMS_URL={base}")
    print(f"  export AEP_CLIENT_ID={client.clientId}")
    print(f"  export AEP_CLIENT_SECRET={client.clientSecret}")
    print(f"  export AEP_ORG_ID={ctx.state.fixture.orgId}")
    print(f"  export AEP_SANDBOX_NAME={ctx.state.fixture.default_sandbox().sandboxName}")
    print("Accounting: GET /simulator/stats, /simulator/journal; Ctrl-C to stop.", flush=True)
    serve_forever(host, port, config)

"""The simulator's Tornado HTTP server: the real AEP/IMS paths plus ``/simulator/*`` accounting.

Start it in-process with ``SimulatorServer(config).start_in_thread()`` (returns the base URL; the
server runs its own asyncio loop in a daemon thread; ``stop()`` ends it), or from a shell with
``run_simulator_cli`` / ``serve_forever``. It binds 127.0.0.1 unless told otherwise. Point the
client's AEP base URL *and* IMS URL at the returned base URL.

Paths served (aep-api.md §1.2): ``POST /ims/token/v3``; ``POST|GET /data/core/ups/segment/jobs``,
``GET|DELETE /data/core/ups/segment/jobs/{id}``; the same for ``/data/core/ups/export/jobs``;
``POST /data/core/activation/disflowprovider/adhocrun``; ``GET /data/foundation/flowservice/runs``
and ``/runs/{id}``. Where the docs disagree (more in state.py's docstring):

- segment job DELETE answers **204, no body** (doc and spec status; the doc's body is dropped);
  export job DELETE answers **200** ``{"status": true, "message": …}`` (the spec's answer);
- ad-hoc v2 is selected by ``Accept: application/vnd.adobe.adhoc.activation+json; version=2``;
  ``exportIds`` with v2 → 400; v1 accepts ``exportIds`` and the tutorial's ``exportId``;
- ``statusURL`` = ``{public_base_url or request scheme+Host}/data/foundation/flowservice/runs/{id}``;
- flow-run statuses are lowercase (``processing``/``success``/``failed``), as every example;
- the flow-run list supports ``property=flowId==<id>`` and ``metrics.statusSummary.status==<s>``,
  newest first, ``limit`` at most 100 (S-DEST-YAML).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from aep_activator.aepsim import admin, handlers
from aep_activator.aepsim.clock import Clock, SystemClock
from aep_activator.aepsim.config import FaultSettings, SimulatorConfig
from aep_activator.aepsim.context import SimContext
from aep_activator.aepsim.fixture import Fixture
from aep_activator.aepsim.http_base import NotFoundHandler, SimHandler
from aep_activator.aepsim.state import SimulatorState

_ID = r"([^/]+)"
ROUTES: list[tuple[str, type[SimHandler]]] = [
    (r"/ims/token/v3/?", handlers.ImsTokenHandler),
    (r"/data/core/ups/segment/jobs/?", handlers.SegmentJobsHandler),
    (rf"/data/core/ups/segment/jobs/{_ID}/?", handlers.SegmentJobHandler),
    (r"/data/core/ups/export/jobs/?", handlers.ExportJobsHandler),
    (rf"/data/core/ups/export/jobs/{_ID}/?", handlers.ExportJobHandler),
    (r"/data/core/activation/disflowprovider/adhocrun/?", handlers.AdhocRunHandler),
    (r"/data/foundation/flowservice/runs/?", handlers.FlowRunsHandler),
    (rf"/data/foundation/flowservice/runs/{_ID}/?", handlers.FlowRunHandler),
    (r"/simulator/stats", admin.StatsHandler),
    (r"/simulator/journal", admin.JournalHandler),
    (r"/simulator/reset", admin.ResetHandler),
    (r"/simulator/fixture", admin.FixtureHandler),
    (r"/simulator/config", admin.ConfigHandler),
]


_access_log = logging.getLogger("aep_activator.aepsim.access")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Debug level: injected 4xx/5xx are the point of the simulator, not warnings. The journal has it all.
    request = handler.request
    _access_log.debug(
        "%d %s %s %.1fms", handler.get_status(), request.method, request.uri, 1000 * request.request_time()
    )


def make_app(ctx: SimContext) -> tornado.web.Application:
    """The Tornado application serving every route over ``ctx``."""
    rules: list[Any] = [(pattern, handler, {"ctx": ctx}) for pattern, handler in ROUTES]
    return tornado.web.Application(
        rules, default_handler_class=NotFoundHandler, default_handler_args={"ctx": ctx}, log_function=_log_request
    )


class SimulatorServer:
    """One simulator: state, journal, tokens and faults behind a Tornado server."""

    def __init__(
        self, config: SimulatorConfig | None = None, clock: Clock | None = None, fixture: Fixture | None = None
    ) -> None:
        self.ctx = SimContext(config or SimulatorConfig(), clock or SystemClock(), fixture)
        self.base_url: str | None = None
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
            self._http = tornado.httpserver.HTTPServer(make_app(self.ctx))
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
        self.ctx.begin_shutdown()
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
    http = tornado.httpserver.HTTPServer(make_app(ctx))
    http.listen(port, host)
    try:
        await asyncio.Event().wait()
    finally:
        ctx.begin_shutdown()
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
    print("Accounting: GET /simulator/stats, /simulator/journal; Ctrl-C to stop.", flush=True)
    serve_forever(host, port, config)

"""Test helpers: the simulator in-process (no server) or on a free local port.

**In-process** (``inprocess_session``): a ``requests.Session`` factory whose sessions are answered by
the simulator's dispatch on the caller's thread, through ``aepsim.http.transport.SimulatorAdapter``,
plus the ``SimContext`` to inspect or drive (``ctx.state``, ``ctx.journal``, ``ctx.clock``). One line
gets the real client running against it with no server, thread or sleep::

    sessions, ctx = inprocess_session(SimulatorConfig(seed=1), ManualClock())
    client = AEPClient(sessions.base_url, tokens=StaticToken(SecretStr(ctx.config.static_token or "")),
                       api_key=ctx.state.fixture.clients[0].clientId, org_id=ctx.state.fixture.orgId,
                       session=sessions())

Faults behave as over HTTP except in time: ``drop`` raises ``requests.ConnectionError``, ``hang``
raises ``requests.ReadTimeout`` at once after the action ran, and latency is recorded in
``sessions.adapter.latencies_s``, never slept. ``ctx.state.fixture.clients[0]`` holds IMS credentials
for ``POST /ims/token/v3`` through the same session.

**Over HTTP** (``SimulatorHarness``): a Tornado simulator on a free local port plus an authenticated
``requests`` session, for tests and demos of any component that talks to AEP::

    with SimulatorHarness(SimulatorConfig(speed=600, seed=1)) as sim:
        job = sim.session.post(sim.url("/data/core/ups/segment/jobs"), json=[{"segmentId": SEGMENT}]).json()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from aep_activator.aepsim.api import SimContext
from aep_activator.aepsim.config import SimulatorConfig
from aep_activator.aepsim.http.transport import SimulatorAdapter
from aep_activator.aepsim.state import SimulatorState
from aep_activator.aepsim.state.clock import Clock, SystemClock
from aep_activator.aepsim.state.fixture import Fixture

if TYPE_CHECKING:
    from aep_activator.aepsim.http.tornado_server import SimulatorServer

INPROCESS_BASE_URL = "http://sim.local"
"""The base URL in-process sessions answer (nothing listens there; the adapter is mounted on it)."""


class InProcessSessions:
    """Makes ``requests.Session`` objects answered in-process by one simulator; all share ``adapter``."""

    def __init__(self, ctx: SimContext, base_url: str = INPROCESS_BASE_URL) -> None:
        self.base_url = base_url
        self.adapter = SimulatorAdapter(ctx)

    def __call__(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment can intercept sim.local
        session.mount(self.base_url, self.adapter)
        return session


def inprocess_session(
    config: SimulatorConfig | None = None, clock: Clock | None = None, fixture: Fixture | None = None
) -> tuple[InProcessSessions, SimContext]:
    """A fresh in-process simulator: ``(session factory, its context)``. See the module docstring."""
    ctx = SimContext(config or SimulatorConfig(), clock or SystemClock(), fixture)
    return InProcessSessions(ctx), ctx


class SimulatorHarness:
    """Starts a ``SimulatorServer`` in a thread; ``session`` carries a fresh IMS token and AEP headers."""

    def __init__(self, config: SimulatorConfig | None = None, clock: Clock | None = None) -> None:
        from aep_activator.aepsim.http.tornado_server import SimulatorServer  # only the HTTP harness needs Tornado

        self.server: SimulatorServer = SimulatorServer(config, clock)
        self.base_url = self.server.start_in_thread()
        fixture = self.server.state.fixture
        self.client_id = fixture.clients[0].clientId
        self.client_secret = fixture.clients[0].clientSecret
        self.org_id = fixture.orgId
        self.session = requests.Session()
        self.session.headers.update(self.headers())

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    def url(self, path: str) -> str:
        return self.base_url + path

    def token(self) -> str:
        """A fresh IMS token for the fixture's client."""
        r = requests.post(
            self.url("/ims/token/v3"),
            timeout=5,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": "openid,AdobeID,read_organizations",
            },
        )
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        """The full AEP header set (a new token unless one is given), plus ``extra``."""
        return {
            "Authorization": f"Bearer {token or self.token()}",
            "x-api-key": self.client_id,
            "x-gw-ims-org-id": self.org_id,
            "x-sandbox-name": "prod",
            "Content-Type": "application/json",
            "Accept": "application/json",
            **extra,
        }

    def reset(self, config: dict[str, Any] | None = None) -> None:
        """Reset the simulator (optionally patching its config) and re-authenticate the session."""
        body = {"config": config} if config else {}
        requests.post(self.url("/simulator/reset"), json=body, timeout=5).raise_for_status()
        self.session.headers.update(self.headers())

    def restart_with(self, config: SimulatorConfig) -> None:
        """Replace the whole config and reset, in-process (no HTTP, so no faults); re-authenticates."""
        self.server.ctx.set_config(config)
        self.server.ctx.reset()
        self.session.headers.update(self.headers())

    def stop(self) -> None:
        self.session.close()
        self.server.stop()

    def __enter__(self) -> SimulatorHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

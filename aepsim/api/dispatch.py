"""The framework-free request pipeline: a ``Request`` goes through faults → gateway → action → reply,
and the journal records it. Adapters (``http/``) turn their own requests into ``Request`` and
realise the ``Outcome``.

For an AEP route the order is: fault draw (``admit``) → the adapter's added latency → drop
(nothing done; the adapter closes the connection) → 5xx / 429 (answered, nothing done) → gateway
header checks → the route's action → hang (accept-then-timeout: the action has run, but the adapter
never sends the answer) → reply. Every AEP and IMS request is journaled with the answer it got (an
HTTP status, or ``"dropped"``/``"hung"``), secrets masked. ``/simulator/*`` routes skip the gateway,
faults and the journal. An unknown path is a 404 and a known path with another method a 405, both in
the gateway's JSON shape and not journaled. An action that crashes answers a journaled 500.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from aep_activator.aepsim.api.context import SimContext
from aep_activator.aepsim.api.errors import internal_error, method_not_allowed, not_found
from aep_activator.aepsim.api.faults import NO_FAULT, FaultDecision, settings_for
from aep_activator.aepsim.api.gateway import check_gateway
from aep_activator.aepsim.state.errors import SimError

_log = logging.getLogger("aep_activator.aepsim.dispatch")

RouteKind = Literal["aep", "ims", "admin"]
"""``aep``: gateway checks, global faults, journaled. ``ims``: journaled, faults only per endpoint.
``admin``: none of these."""


def canonical_header(name: str) -> str:
    """``x-api-key`` → ``X-Api-Key``: the one spelling the journal shows, whatever the adapter."""
    return "-".join(part.capitalize() for part in name.split("-"))


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers under their canonical names."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = {canonical_header(k): v for k, v in (items or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._items[canonical_header(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Request:
    """One request as an adapter received it. ``base_url`` is where it was sent (scheme and host)."""

    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    base_url: str = "http://127.0.0.1"

    def arg(self, name: str) -> str | None:
        """The last value of query parameter ``name``, stripped; None when absent or empty."""
        values = self.query.get(name)
        return (values[-1].strip() or None) if values else None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return (value.strip() or None) if value is not None else None

    def form(self) -> dict[str, str]:
        """Query and form-encoded body parameters, the body's winning (what IMS reads)."""
        out = {k: v[-1].strip() for k, v in self.query.items() if v}
        if "x-www-form-urlencoded" in self.headers.get("Content-Type", "") and self.body:
            out.update({k: v.strip() for k, v in parse_qsl(self.body.decode(errors="replace"), keep_blank_values=True)})
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()

    def all_headers(self) -> dict[str, str]:
        extra = {} if self.body is None else {"Content-Type": "application/json;charset=utf-8"}
        return {**extra, **self.headers}


@dataclass(frozen=True)
class Outcome:
    """What the adapter must do: send ``reply``, or close without an answer (``drop``), or hold the
    connection ``hang_s`` and then close it without an answer (``hang``, after the action ran)."""

    kind: Literal["reply", "drop", "hang"]
    reply: Reply | None = None
    hang_s: float = 0.0


class Call:
    """What a route's action sees: the context, the request, the path parameters and helpers."""

    def __init__(self, ctx: SimContext, request: Request, params: dict[str, str], route: Route) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.request = request
        self.params = params
        self.route = route

    def fail(self, status: int, message: str) -> SimError:
        """This service's error answer."""
        return self.route.fail(status, message)

    def json_body(self) -> Any:
        """The parsed JSON body, or a 400 in this service's error shape."""
        if not self.request.body:
            raise self.fail(400, "Invalid request body: a JSON body is required")
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.fail(400, f"Malformed JSON in request body: {exc}") from None

    def int_arg(self, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = self.request.arg(name)
        if raw is None:
            return default
        # ASCII digits only: int() takes "٣" and " 3", and "²" passes str.isdigit() but not int().
        if not re.fullmatch(r"[0-9]+", raw, re.ASCII):
            raise self.fail(400, f"Query parameter {name!r} must be a non-negative integer, got {raw!r}")
        value = int(raw)
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(400, f"Query parameter {name!r} must be {limit}, got {value}")
        return value

    @property
    def sandbox_name(self) -> str | None:
        return self.request.header("x-sandbox-name")

    @property
    def org_id(self) -> str | None:
        return self.request.header("x-gw-ims-org-id")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    """The path template (``aep.api.paths``), e.g. ``/data/core/ups/segment/jobs/{id}``."""
    action: Callable[[Call], Reply]
    kind: RouteKind
    fail: Callable[[int, str], SimError]

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template)) + "/?$")


@dataclass(frozen=True)
class Admission:
    """A request matched to its route (or to none) with its fault decision drawn."""

    request: Request
    route: Route | None
    params: dict[str, str]
    decision: FaultDecision
    early: SimError | None = None
    """A 404/405 answered without running anything."""

    @property
    def latency_s(self) -> float:
        """Added latency the adapter waits before ``run`` (the in-process transport never waits)."""
        return self.decision.latency_s


class Dispatcher:
    """Routes requests over one ``SimContext``; thread-safe (the state and journal have their locks)."""

    def __init__(self, ctx: SimContext, routes: list[Route]) -> None:
        self.ctx = ctx
        self._routes = [(r, r.pattern) for r in routes]

    def admit(self, request: Request) -> Admission:
        path_matched = False
        for route, pattern in self._routes:
            m = pattern.match(request.path)
            if m is None:
                continue
            path_matched = True
            if route.method != request.method.upper():
                continue
            params = {k: unquote(v) for k, v in m.groupdict().items()}
            name = f"{route.method} {route.template}"
            aep = route.kind == "aep"
            settings = None if route.kind == "admin" else settings_for(self.ctx.config, name, is_aep=aep)
            decision = self.ctx.faults.decide(settings) if settings else NO_FAULT
            return Admission(request, route, params, decision)
        early = method_not_allowed() if path_matched else not_found()
        return Admission(request, None, {}, NO_FAULT, early)

    def run(self, admission: Admission) -> Outcome:
        route, request, decision = admission.route, admission.request, admission.decision
        if route is None:
            err = admission.early or not_found()
            return Outcome("reply", Reply(err.status, err.body, err.headers))
        journaled = route.kind != "admin"
        if decision.kind == "drop":
            self._journal(route, request, "dropped")
            return Outcome("drop")
        if decision.kind in ("5xx", "429"):
            err = decision.error()
            reply = Reply(err.status, err.body, err.headers)
        else:
            reply = self._act(route, request, admission.params)
        if decision.kind == "hang":
            self._journal(route, request, "hung", _created(reply))
            return Outcome("hang", reply, self.ctx.config.hang_s)
        if journaled:
            self._journal(route, request, reply.status, _created(reply))
        return Outcome("reply", reply)

    def __call__(self, request: Request) -> Outcome:
        return self.run(self.admit(request))

    def _act(self, route: Route, request: Request, params: dict[str, str]) -> Reply:
        try:
            if route.kind == "aep":
                ctx = self.ctx
                check_gateway(request.method, request.headers, ctx.config, ctx.state.fixture, ctx.tokens)
            return route.action(Call(self.ctx, request, params, route))
        except SimError as exc:
            return Reply(exc.status, exc.body, exc.headers)
        except Exception:
            _log.exception("simulator route %s %s crashed", route.method, route.template)
            err = internal_error()
            return Reply(err.status, err.body)

    def _journal(self, route: Route, request: Request, status: int | str, created: str | None = None) -> None:
        query: dict[str, Any] = {k: v if len(v) > 1 else v[0] for k, v in request.query.items() if v}
        self.ctx.journal.record(
            time=self.ctx.clock.now(),
            method=request.method,
            path=request.path,
            template=route.template,
            query=query,
            status=status,
            body=_loggable_body(request),
            headers=dict(request.headers),
            created=created,
        )


def _created(reply: Reply) -> str | None:
    """The id of the job a POST created (its answer's ``id``), so a test can tell who ended up owning it."""
    if not 200 <= reply.status < 300 or not isinstance(reply.body, dict):
        return None
    value = reply.body.get("id")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _loggable_body(request: Request) -> Any:
    raw = request.body
    if not raw:
        return None
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "x-www-form-urlencoded" in request.headers.get("Content-Type", ""):
        return dict(parse_qsl(text, keep_blank_values=True))
    return text[:2000]

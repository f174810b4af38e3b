"""``SimHandler``: the request pipeline every simulator endpoint goes through.

For a route marked ``aep`` the order is: fault draw → added latency → drop (close, nothing done)
→ 5xx / 429 (answer, nothing done) → gateway header checks → the endpoint's action → hang
(accept-then-timeout: the action has run, but the answer is never sent; the connection is closed
after ``hang_s``) → answer. Every AEP and IMS request is journaled with the answer it got.
Each service answers its own 400 body shape (``SimHandler.fail``, see errors.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import tornado.web
from pydantic import ValidationError

from aep_activator.aepsim.context import SimContext
from aep_activator.aepsim.errors import SimError, gateway_error, ups_error
from aep_activator.aepsim.faults import NO_FAULT, settings_for
from aep_activator.aepsim.gateway import check_gateway
from aep_activator.aepsim.state import SimulatorState


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def describe(exc: ValidationError, *, root: str | None = None) -> str:
    """A one-line message naming each invalid field, e.g. ``[0].segmentId: Field required``."""
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        if root is not None and loc and loc[0] == root:
            loc = loc[1:]  # the wire body was the bare array the model wraps in `root`
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "body"
        parts.append(f"{path}: {err['msg']}")
    return "Invalid request body: " + "; ".join(parts)


class SimHandler(tornado.web.RequestHandler):
    template: ClassVar[str] = ""
    aep: ClassVar[bool] = True
    """Gateway checks and global faults apply (False for IMS and /simulator/*)."""
    journaled: ClassVar[bool] = True

    def initialize(self, ctx: SimContext) -> None:
        self.ctx = ctx

    @property
    def state(self) -> SimulatorState:
        return self.ctx.state

    def check_xsrf_cookie(self) -> None:
        return None

    # ---------------------------------------------------------------------------------- pipeline

    async def serve(self, action: Callable[[], Reply]) -> None:
        method = self.request.method or "GET"
        config = self.ctx.config
        route = f"{method} {self.template}"
        settings = settings_for(config, route, is_aep=self.aep) if self.journaled else None
        decision = self.ctx.faults.decide(settings) if settings else NO_FAULT
        await self.ctx.pause(decision.latency_s)
        if decision.kind == "drop":
            self._journal("dropped")
            self._close_without_answer()
            return
        if decision.kind in ("5xx", "429"):
            err = decision.error()
            reply = Reply(err.status, err.body, err.headers)
        else:
            try:
                if self.aep:
                    check_gateway(method, self.request.headers, config, self.state.fixture, self.ctx.tokens)
                reply = action()
            except SimError as exc:
                reply = Reply(exc.status, exc.body, exc.headers)
        if decision.kind == "hang":
            self._journal("hung")
            await self.ctx.pause(config.hang_s)
            self._close_without_answer()
            return
        if self.journaled:
            self._journal(reply.status)
        self._answer(reply)

    def _answer(self, reply: Reply) -> None:
        self.set_status(reply.status)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        if reply.body is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json;charset=utf-8")
        self.finish(json.dumps(reply.body))

    def _close_without_answer(self) -> None:
        # detach() stops Tornado's HTTP processing, so closing the stream sends no bytes at all.
        self.detach().close()

    def _journal(self, status: int | str) -> None:
        self.ctx.journal.record(
            time=self.ctx.clock.now(),
            method=self.request.method or "",
            path=self.request.path,
            template=self.template,
            query=self._query(),
            status=status,
            body=self._loggable_body(),
            headers=dict(self.request.headers),
        )

    def _query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for key, values in self.request.query_arguments.items():
            decoded = [v.decode(errors="replace") for v in values]
            query[key] = decoded if len(decoded) > 1 else decoded[0]
        return query

    def _loggable_body(self) -> Any:
        raw = self.request.body
        if not raw:
            return None
        text = raw.decode(errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            pass
        if "x-www-form-urlencoded" in self.request.headers.get("Content-Type", ""):
            return dict(parse_qsl(text, keep_blank_values=True))
        return text[:2000]

    # ---------------------------------------------------------------------------------- helpers

    def json_body(self) -> Any:
        """The parsed JSON body, or a 400 in this service's error shape."""
        if not self.request.body:
            raise self.fail(400, "Invalid request body: a JSON body is required")
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.fail(400, f"Malformed JSON in request body: {exc}") from None

    def int_arg(self, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(400, f"Query parameter {name!r} must be an integer, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(400, f"Query parameter {name!r} must be {limit}, got {value}")
        return value

    def fail(self, status: int, message: str) -> SimError:
        """This service's error answer; segmentation's shape unless a handler overrides it."""
        return ups_error(status, message)

    def header_or_none(self, name: str) -> str | None:
        return self.request.headers.get(name) or None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Tornado's own errors (405, unexpected exceptions) in the gateway's JSON shape, not HTML.
        self.set_header("Content-Type", "application/json;charset=utf-8")
        err = gateway_error(status_code, f"{status_code}000", self._reason)
        self.finish(json.dumps(err.body))


class NotFoundHandler(SimHandler):
    """Any path the simulator does not serve."""

    aep = False
    journaled = False

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)

"""Accounting and control endpoints under ``/simulator/`` (no gateway checks, no faults, not journaled).

- ``GET /simulator/stats``: calls and answer statuses per ``METHOD template``, jobs by kind and
  status, quota used per UTC day, tokens issued.
- ``GET /simulator/journal?since=<seq>``: every AEP/IMS request received, secrets masked.
- ``POST /simulator/reset``: clears state, journal, quotas and tokens; the config stays unless the
  optional body ``{"config": {...partial config...}}`` changes it.
- ``GET /simulator/fixture``; ``GET|PUT /simulator/config`` (PUT deep-merges a partial config;
  unknown keys or bad values → 400 naming the field).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from aep_activator.aepsim.errors import SimError
from aep_activator.aepsim.http_base import Reply, SimHandler, describe


class _AdminHandler(SimHandler):
    aep = False
    journaled = False

    def fail(self, status: int, message: str) -> SimError:
        return SimError(status, {"message": message})

    def object_body(self) -> dict[str, Any]:
        if not self.request.body.strip():
            return {}
        data = self.json_body()
        if not isinstance(data, dict):
            raise self.fail(400, "expected a JSON object")
        return data

    def patched(self, patch: Any) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise self.fail(400, "config must be a JSON object")
        try:
            return self.ctx.apply_config(patch).model_dump()
        except ValidationError as exc:
            raise self.fail(400, describe(exc).replace("Invalid request body", "Invalid config")) from None


class StatsHandler(_AdminHandler):
    template = "/simulator/stats"

    async def get(self) -> None:
        await self.serve(lambda: Reply(200, self.ctx.stats()))


class JournalHandler(_AdminHandler):
    template = "/simulator/journal"

    async def get(self) -> None:
        await self.serve(
            lambda: Reply(
                200,
                {"entries": self.ctx.journal.since(self.int_arg("since", 0, 0)), "last_seq": self.ctx.journal.last_seq},
            )
        )


class ResetHandler(_AdminHandler):
    template = "/simulator/reset"

    async def post(self) -> None:
        await self.serve(self._reset)

    def _reset(self) -> Reply:
        body = self.object_body()
        unknown = set(body) - {"config"}
        if unknown:
            raise self.fail(400, f"unknown reset option(s): {', '.join(sorted(unknown))}; only 'config'")
        config = self.patched(body["config"]) if "config" in body else self.ctx.config.model_dump()
        self.ctx.reset()
        return Reply(200, {"status": "reset", "config": config})


class FixtureHandler(_AdminHandler):
    template = "/simulator/fixture"

    async def get(self) -> None:
        await self.serve(lambda: Reply(200, self.state.fixture.model_dump()))


class ConfigHandler(_AdminHandler):
    template = "/simulator/config"

    async def get(self) -> None:
        await self.serve(lambda: Reply(200, self.ctx.config.model_dump()))

    async def put(self) -> None:
        await self.serve(lambda: Reply(200, self.patched(self.object_body())))

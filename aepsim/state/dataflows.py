"""Destination dataflows as the Flow Service shows them (``GET /flowservice/flows/{id}``, S-DEST-YAML
``Batch_Flow``): the audiences mapped to each, with when each was first activated.

Fixture mappings were first activated long ago (``createTime`` 30 days before the state's start, in
simulated time). ``map_audience`` maps one now, as a marketer adding an audience to a dataflow would:
for an hour (the ad-hoc spec's one-time constraint) an ad-hoc run of it is refused.
"""

from __future__ import annotations

from typing import Any

from aep_activator.aepsim.state.activation import ActivationState
from aep_activator.aepsim.state.errors import flow_error

_LONG_AGO_S = 30 * 86400


class DataflowState(ActivationState):
    def _reset_unlocked(self) -> None:
        super()._reset_unlocked()
        self._started_at = self.clock.now()
        self._mapped_at: dict[tuple[str, str], float] = {}

    def _mapped(self, flow_id: str) -> list[str]:
        added = [a for (f, a) in self._mapped_at if f == flow_id]
        return list(dict.fromkeys([*super()._mapped(flow_id), *added]))

    def _first_activated(self, flow_id: str, audience: str) -> float:
        return self._mapped_at.get((flow_id, audience), self._started_at - _LONG_AGO_S)

    def map_audience(self, flow_id: str, audience: str) -> dict[str, Any]:
        """Map ``audience`` to ``flow_id`` now (first activated now); returns the dataflow."""
        with self._lock:
            if self.fixture.destination(flow_id) is None:
                raise flow_error(404, f"flows not found with id = [{flow_id}]", flow_id)
            if self.fixture.segment(audience) is None:
                raise flow_error(400, f"Unknown segment {audience}", flow_id)
            self._mapped_at.setdefault((flow_id, audience), self.clock.now())
            return self.get_flow(flow_id)

    def get_flow(self, flow_id: str, *, sandbox_name: str | None = None) -> dict[str, Any]:
        """The dataflow in the spec's ``Batch_Flow`` shape (only the fields a client reads are filled)."""
        with self._lock:
            sandbox = self._sandbox(sandbox_name)
            dest = self.fixture.destination(flow_id)
            if dest is None:
                raise flow_error(404, f"flows not found with id = [{flow_id}]", flow_id)
            selectors = [
                {
                    "type": "PLATFORM_SEGMENT",
                    "value": {
                        "id": audience,
                        "name": (self.fixture.segment(audience) or dest).name,
                        "exportMode": "DAILY_FULL_EXPORT",
                        "createTime": str(int(self._first_activated(flow_id, audience))),
                        "updateTime": str(int(self._first_activated(flow_id, audience))),
                        "schedule": {"frequency": "DAILY", "triggerType": "SCHEDULED", "startTime": "06:00"},
                    },
                }
                for audience in self._mapped(flow_id)
            ]
            return {
                "id": dest.id,
                "name": dest.name,
                "flowSpec": {"id": dest.flowSpecId, "version": "1.0"},
                "state": "enabled",
                "sandboxName": sandbox.sandboxName,
                "sandboxId": sandbox.sandboxId,
                "imsOrgId": self.fixture.orgId,
                "sourceConnectionIds": [dest.sourceConnectionId],
                "targetConnectionIds": [dest.targetConnectionId],
                "transformations": [
                    {"name": "GeneralTransform", "params": {"segmentSelectors": {"selectors": selectors}}}
                ],
            }

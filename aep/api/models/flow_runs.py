"""Flow runs (``/data/foundation/flowservice/runs``): what an ad-hoc activation starts, per dataflow and audience.

https://developer.adobe.com/experience-platform-apis/references/destinations/
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
)

from aep_activator.aep.api.models.base import Id, _Response


class FlowRunStatus(StrEnum):
    SUCCESS = "success"
    PROCESSING = "processing"
    WAITING = "waiting"
    FAILED = "failed"
    CANCELLED = "cancelled"


FLOW_RUN_TERMINAL = frozenset({FlowRunStatus.SUCCESS, FlowRunStatus.FAILED, FlowRunStatus.CANCELLED})


def _flow_status(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


class RunError(_Response):
    code: str | None = None
    message: str | None = None


class StatusSummary(_Response):
    status: Annotated[FlowRunStatus, BeforeValidator(_flow_status)]
    errors: list[RunError] = Field(default_factory=list)
    activityRefs: list[str] | None = None


class DurationSummary(_Response):
    startedAtUTC: int | None = None
    completedAtUTC: int | None = None


class FlowRunMetrics(_Response):
    durationSummary: DurationSummary | None = None
    sizeSummary: dict[str, Any] | None = None
    recordSummary: dict[str, Any] | None = None
    fileSummary: dict[str, Any] | None = None
    statusSummary: StatusSummary


class FlowSpecRef(_Response):
    id: str | None = None
    version: str | None = None


class FlowRun(_Response):
    id: Id
    flowId: str | None = None
    createdAt: int | None = None
    updatedAt: int | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    createdClient: str | None = None
    updatedClient: str | None = None
    sandboxId: str | None = None
    sandboxName: str | None = None
    imsOrgId: str | None = None
    flowSpec: FlowSpecRef | None = None
    providerRefId: str | None = None
    etag: str | None = None
    metrics: FlowRunMetrics
    activities: list[dict[str, Any]] | None = None

    @property
    def status(self) -> FlowRunStatus:
        return self.metrics.statusSummary.status


class FlowRunList(_Response):
    items: list[FlowRun]
    links: dict[str, Any] | None = Field(default=None, alias="_links")

    @property
    def next_token(self) -> str | None:
        """The ``continuationToken`` of ``_links.next.href``, if a next page exists."""
        nxt = (self.links or {}).get("next")
        href = nxt.get("href") if isinstance(nxt, dict) else nxt
        if not isinstance(href, str) or "continuationToken=" not in href:
            return None
        from urllib.parse import parse_qs, urlsplit

        tokens = parse_qs(urlsplit(href).query).get("continuationToken") or []
        return tokens[0] if tokens else None

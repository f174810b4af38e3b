"""The ad-hoc activation (``POST /data/core/activation/disflowprovider/adhocrun``), v1 and v2.

https://experienceleague.adobe.com/en/docs/experience-platform/destinations/api/ad-hoc-activation-api
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    model_validator,
)

from aep_activator.aep.api.models.base import Id, OpaqueId, _Request, _Response

MAX_AUDIENCES_PER_ADHOC_JOB = 80
"""Hard limit: "Attempting to activate more than 80 audiences per job will cause the job to fail"."""


ADHOC_V2_ACCEPT = "application/vnd.adobe.adhoc.activation+json; version=2"


def _activation_info(v: Any) -> Any:
    if not isinstance(v, dict) or not v:
        raise ValueError("must be a non-empty object mapping destination (dataflow) ids to audience id lists")
    return v


ActivationInfo = Annotated[dict[Id, Annotated[list[Id], Field(min_length=1)]], BeforeValidator(_activation_info)]


def audiences_of(info: dict[str, list[str]]) -> list[str]:
    """Distinct audience ids of an ``activationInfo`` map, in first-seen order."""
    return list(dict.fromkeys(a for auds in info.values() for a in auds))


def check_audience_count(info: dict[str, list[str]]) -> None:
    n = len(audiences_of(info))
    if n > MAX_AUDIENCES_PER_ADHOC_JOB:
        raise ValueError(f"{n} audiences in one ad-hoc job; AEP allows at most {MAX_AUDIENCES_PER_ADHOC_JOB}")
    for dest, auds in info.items():
        if len(set(auds)) != len(auds):
            raise ValueError(f"destination {dest!r} lists an audience twice")


class AdhocRunV1(_Request):
    """v1 body: ``activationInfo`` and ``exportIds``. The tutorial's ``exportId`` spelling is accepted."""

    activationInfo: ActivationInfo
    exportIds: list[OpaqueId] = Field(min_length=1, validation_alias=AliasChoices("exportIds", "exportId"))

    @model_validator(mode="after")
    def _limits(self) -> AdhocRunV1:
        check_audience_count(self.activationInfo)
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump()


class AdhocRunV2(_Request):
    """v2 body (sent with ``Accept: application/vnd.adobe.adhoc.activation+json; version=2``)."""

    activationInfo: ActivationInfo

    @model_validator(mode="after")
    def _limits(self) -> AdhocRunV2:
        check_audience_count(self.activationInfo)
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump()


class AdhocOrder(_Response):
    segment: str
    order: str
    statusURL: str = Field(min_length=1)

    @property
    def run_id(self) -> str:
        return self.statusURL.rstrip("/").rsplit("/", 1)[-1]


class AdhocRunResponse(_Response):
    order: list[AdhocOrder] = Field(min_length=1)


class AdhocErrorBody(_Response):
    message: str

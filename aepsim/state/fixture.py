"""The simulator's world: org, credentials, sandboxes, datasets, segment definitions and dataflows.

The default world ships as ``aepsim/state/fixture.json`` (read with ``importlib.resources``);
``load_fixture(path)`` reads a replacement with the same shape. Destinations are dataflow ids
(the keys of ``activationInfo``) with the audiences mapped to them; an audience mapped to no
dataflow exists so the "not part of this dataflow" error can be exercised.

Sandboxes: the fixture lists the org's sandboxes (``prod``, production and the default; ``dev``,
development). Only these exist: an unknown name is an error, never a made-up sandbox. Segment
definitions and dataflows are a simplification shared by every sandbox (AEP keeps them per sandbox);
everything the API creates (jobs, runs) and every quota and guardrail is per sandbox.
"""

from __future__ import annotations

import json
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Fixture(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientCredential(_Fixture):
    clientId: str
    clientSecret: str


class SandboxInfo(_Fixture):
    sandboxId: str
    sandboxName: str
    type: str = "production"
    default: bool = False


class DatasetInfo(_Fixture):
    id: str
    name: str = ""
    schemaName: str = "_xdm.context.profile"


class MergePolicyInfo(_Fixture):
    id: str
    version: int = 1


class SegmentInfo(_Fixture):
    id: str
    name: str
    expression: str = Field(description="PQL text")
    mergePolicy: MergePolicyInfo
    profiles: int = Field(default=100, ge=0, description="simulated audience size")


class DestinationInfo(_Fixture):
    id: str = Field(description="the dataflow id used as an activationInfo key")
    name: str
    flowSpecId: str
    sourceConnectionId: str
    targetConnectionId: str
    audiences: list[str]


class Fixture(_Fixture):
    orgId: str
    clients: list[ClientCredential] = Field(min_length=1)
    sandboxes: list[SandboxInfo] = Field(min_length=1)
    datasets: list[DatasetInfo] = Field(default_factory=list)
    defaultMergePolicy: MergePolicyInfo
    segments: list[SegmentInfo]
    destinations: list[DestinationInfo]

    @model_validator(mode="after")
    def _audiences_are_known(self) -> Fixture:
        names = [s.sandboxName for s in self.sandboxes]
        if len(set(names)) != len(names):
            raise ValueError(f"sandbox names must be unique, got {names}")
        known = {s.id for s in self.segments}
        for dest in self.destinations:
            unknown = [a for a in dest.audiences if a not in known]
            if unknown:
                raise ValueError(f"destination {dest.id} maps unknown segments {unknown}")
        return self

    def segment(self, segment_id: str) -> SegmentInfo | None:
        return self._segments_by_id.get(segment_id)

    def destination(self, dataflow_id: str) -> DestinationInfo | None:
        return self._destinations_by_id.get(dataflow_id)

    # Lookups by id: a dataflow's GET names every audience mapped to it, and a scan of the segments
    # per audience made that quadratic in a world with hundreds of audiences (the bench's).
    @cached_property
    def _segments_by_id(self) -> dict[str, SegmentInfo]:
        return {s.id: s for s in reversed(self.segments)}  # reversed: the first of duplicate ids wins, as before

    @cached_property
    def _destinations_by_id(self) -> dict[str, DestinationInfo]:
        return {d.id: d for d in reversed(self.destinations)}

    def sandbox(self, name: str) -> SandboxInfo | None:
        """The named sandbox, or None when the org has no sandbox of that name."""
        return next((s for s in self.sandboxes if s.sandboxName == name), None)

    def default_sandbox(self) -> SandboxInfo:
        return next((s for s in self.sandboxes if s.default), self.sandboxes[0])


def load_fixture(path: str | Path | None = None) -> Fixture:
    """The fixture at ``path``, or the packaged ``fixture.json`` when ``path`` is None."""
    if path is None:
        text = resources.files("aep_activator.aepsim.state").joinpath("fixture.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data: Any = json.loads(text)
    return Fixture.model_validate(data)

"""Destination dataflows (``/data/foundation/flowservice/flows``, S-DEST-YAML ``Batch_Flow``): only what the
preflight reads.
"""

from __future__ import annotations

import re

from pydantic import (
    Field,
)

from aep_activator.aep.api.models.base import Id, _Response

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?")  # ASCII only: str.isdigit() admits "²", which float() refuses


class SegmentSelectorValue(_Response):
    id: str | None = None
    name: str | None = None
    createTime: str | None = Field(default=None, description="epoch s: when the audience was first activated here")


class SegmentSelector(_Response):
    type: str | None = None
    value: SegmentSelectorValue | None = None


class SegmentSelectors(_Response):
    selectors: list[SegmentSelector] = Field(default_factory=list)


class TransformationParams(_Response):
    segmentSelectors: SegmentSelectors | None = None


class Transformation(_Response):
    name: str | None = None
    params: TransformationParams | None = None


class Flow(_Response):
    id: Id
    name: str | None = None
    state: str | None = None
    transformations: list[Transformation] = Field(default_factory=list)

    def mapped_audiences(self) -> dict[str, float]:
        """Audience id -> when it was first activated on this dataflow (epoch s; 0 when AEP gives no time)."""
        out: dict[str, float] = {}
        for transform in self.transformations:
            selectors = transform.params.segmentSelectors if transform.params else None
            for selector in selectors.selectors if selectors else []:
                value = selector.value
                if value is not None and value.id:
                    created = value.createTime or ""
                    out[value.id] = float(created) if _DECIMAL.fullmatch(created) else 0.0  # "²" is a digit too
        return out


class FlowList(_Response):
    items: list[Flow]

"""A simulator world with many audiences, so concurrent bench runs never share one.

Runs on the same audience serialise by design (our audience locks and AEP's "Run already going
on…"), which would measure lock waits instead of overhead. The bench gives run ``i`` the audience
``i % AUDIENCES``; with more audiences than runs in flight no two runs contend.

The audiences are spread over dataflows of :data:`PER_DATAFLOW` each, the most AEP advises mapping to one
destination dataflow (a soft guardrail, S-DESTGUARD-MD; aep-api.md's guardrail table): the preflight
reads the run's dataflow, so a dataflow twice that size would weigh on every run.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from aep_activator.aepsim.state.fixture import load_fixture

AUDIENCES = 500
PER_DATAFLOW = 250  # AEP: "Audiences mapped to one destination dataflow: 250" (soft, performance)


def audience_id(i: int) -> str:
    # Deterministic, valid UUIDs: the same run index always gets the same audience.
    return str(uuid.UUID(int=0xBE4C << 112 | (i % AUDIENCES)))


def dataflow_id(i: int) -> str:
    """The bench dataflow that audience ``i`` is mapped to."""
    return str(uuid.UUID(int=0xDF10 << 112 | (i % AUDIENCES) // PER_DATAFLOW))


def write_fixture(directory: Path) -> Path:
    """Write the default fixture plus ``AUDIENCES`` segments, ``PER_DATAFLOW`` to a dataflow; return its path."""
    base = load_fixture().model_dump()
    policy = base["defaultMergePolicy"]
    base["segments"] += [
        {"id": audience_id(i), "name": f"bench audience {i}", "expression": "true", "mergePolicy": policy,
         "profiles": 100}
        for i in range(AUDIENCES)
    ]  # fmt: skip
    template = base["destinations"][0]  # a real destination's spec and connections, as a copy
    flows: dict[str, dict[str, Any]] = {}
    for i in range(AUDIENCES):
        flow_id = dataflow_id(i)
        if flow_id not in flows:
            flows[flow_id] = {**template, "id": flow_id, "name": f"bench dataflow {len(flows)}", "audiences": []}
        flows[flow_id]["audiences"].append(audience_id(i))
    assert max(len(f["audiences"]) for f in flows.values()) <= PER_DATAFLOW
    base["destinations"] += flows.values()
    path = directory / "bench-fixture.json"
    path.write_text(json.dumps(base), encoding="utf-8")
    return path


def request(i: int, *, on_quota: str = "wait", started_by: str = "bench") -> dict[str, Any]:
    """The tutorial's v1 request (segment job, export job, ad-hoc run) on audience ``i``."""
    audience = audience_id(i)
    return {
        "activation_info": {dataflow_id(i): [audience]},
        "export_job": {
            "fields": "identities.id,personalEmail.address",
            "filter": {"segments": [{"segmentId": audience, "segmentNs": "ups", "status": ["realized"]}]},
            "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
        },
        "version": 1,
        "on_quota": on_quota,
        "started_by": started_by,
    }

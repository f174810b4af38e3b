"""A simulator world with many audiences, so concurrent bench runs never share one.

Runs on the same audience serialise by design (our audience locks and AEP's "Run already going
on…"), which would measure lock waits instead of overhead. The bench gives run ``i`` the audience
``i % AUDIENCES``; with more audiences than runs in flight no two runs contend.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from aep_activator.aepsim.state.fixture import load_fixture

AUDIENCES = 512
DATAFLOW_ID = "b0780cb5-2bb7-4409-bf2c-c625ca818588"


def audience_id(i: int) -> str:
    # Deterministic, valid UUIDs: the same run index always gets the same audience.
    return str(uuid.UUID(int=0xBE4C << 112 | (i % AUDIENCES)))


def write_fixture(directory: Path) -> Path:
    """Write the default fixture plus ``AUDIENCES`` segments mapped to one dataflow; return its path."""
    base = load_fixture().model_dump()
    policy = base["defaultMergePolicy"]
    ids = [audience_id(i) for i in range(AUDIENCES)]
    base["segments"] += [
        {"id": a, "name": f"bench audience {n}", "expression": "true", "mergePolicy": policy, "profiles": 100}
        for n, a in enumerate(ids)
    ]
    base["destinations"][0]["audiences"] += ids
    assert base["destinations"][0]["id"] == DATAFLOW_ID
    path = directory / "bench-fixture.json"
    path.write_text(json.dumps(base), encoding="utf-8")
    return path


def request(i: int, *, on_quota: str = "wait", started_by: str = "bench") -> dict[str, Any]:
    """The tutorial's v1 request (segment job, export job, ad-hoc run) on audience ``i``."""
    audience = audience_id(i)
    return {
        "activation_info": {DATAFLOW_ID: [audience]},
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

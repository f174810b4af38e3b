"""The preflight's per-process copy of what each dataflow maps: reused only while recent and complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aep_activator.aep.api.errors import NotFound
from aep_activator.aep.pipeline.steps.dataflows import DataflowCache


@dataclass
class Flow:
    audiences: dict[str, float]

    def mapped_audiences(self) -> dict[str, float]:
        return dict(self.audiences)


@dataclass
class FakeFlows:
    world: dict[str, dict[str, float]]
    reads: list[str] = field(default_factory=list)

    def get(self, flow_id: str) -> Flow:
        self.reads.append(flow_id)
        if flow_id not in self.world:
            raise NotFound(f"no dataflow {flow_id}")
        return Flow(self.world[flow_id])


@dataclass
class FakeClient:
    flows: FakeFlows
    sandbox: str | None = "prod"
    base_url: str = "https://platform.adobe.io"


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def setup(**world: dict[str, float]) -> tuple[DataflowCache, Any, Clock]:
    clock = Clock()
    return DataflowCache(ttl_s=60, size=2, clock=clock), FakeClient(FakeFlows(dict(world))), clock


def test_a_recent_copy_that_maps_every_audience_is_reused_until_it_is_a_minute_old() -> None:
    cache, client, clock = setup(f1={"a": 1.0, "b": 2.0})
    assert cache.mapped(client, "f1", ["a"], fresh=False) == {"a": 1.0, "b": 2.0}
    clock.t = 59.9
    assert cache.mapped(client, "f1", ["a", "b"], fresh=False) == {"a": 1.0, "b": 2.0}
    assert client.flows.reads == ["f1"]
    clock.t = 60.0
    cache.mapped(client, "f1", ["a"], fresh=False)
    assert client.flows.reads == ["f1", "f1"]


def test_an_audience_the_copy_lacks_and_a_fresh_read_go_to_aep() -> None:
    cache, client, _ = setup(f1={"a": 1.0})
    cache.mapped(client, "f1", ["a"], fresh=False)
    client.flows.world["f1"] = {"a": 1.0, "new": 5.0}
    assert cache.mapped(client, "f1", ["new"], fresh=False) == {"a": 1.0, "new": 5.0}
    cache.mapped(client, "f1", ["a"], fresh=True)
    assert client.flows.reads == ["f1", "f1", "f1"]


def test_copies_are_per_sandbox_and_bounded_and_a_missing_dataflow_is_never_kept() -> None:
    cache, client, _ = setup(f1={"a": 1.0}, f2={"a": 1.0}, f3={"a": 1.0})
    dev = FakeClient(client.flows, sandbox="dev")
    cache.mapped(client, "f1", ["a"], fresh=False)
    cache.mapped(dev, "f1", ["a"], fresh=False)  # another sandbox: its own read
    assert client.flows.reads == ["f1", "f1"]
    cache.mapped(client, "f2", ["a"], fresh=False)  # size 2: the oldest (prod f1) is dropped
    cache.mapped(client, "f1", ["a"], fresh=False)
    assert client.flows.reads == ["f1", "f1", "f2", "f1"]
    for _ in range(2):
        try:
            cache.mapped(client, "gone", ["a"], fresh=False)
        except NotFound:
            pass
        else:  # pragma: no cover
            raise AssertionError("a missing dataflow must raise NotFound")
    assert client.flows.reads[-2:] == ["gone", "gone"]

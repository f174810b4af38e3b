"""The simulator's fixture, config and clock: replaceable world, strict config, atomic check-then-act."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from aep_activator.aepsim import ManualClock, SimulatorConfig, SimulatorState, load_fixture
from aep_activator.aepsim.config import merge_config
from aep_activator.aepsim.state.errors import SimError

SEG_US = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"


def test_the_packaged_fixture_holds_the_tutorial_ids() -> None:
    fixture = load_fixture()
    assert fixture.segment(SEG_US) is not None
    assert "5b7c86968f7b6501e21ba9df" in [d.id for d in fixture.datasets]
    assert len(fixture.destinations) == 2
    mapped = {a for d in fixture.destinations for a in d.audiences}
    assert [s.id for s in fixture.segments if s.id not in mapped], "one audience must be mapped nowhere"


def test_a_fixture_file_replaces_the_packaged_one(tmp_path: Path) -> None:
    data = load_fixture().model_dump()
    data["orgId"] = "OTHER@AdobeOrg"
    path = tmp_path / "world.json"
    path.write_text(json.dumps(data))
    state = SimulatorState(SimulatorConfig(fixture_path=str(path)), ManualClock())
    assert state.create_segment_job([SEG_US])["imsOrgId"] == "OTHER@AdobeOrg"


def test_a_fixture_mapping_an_unknown_segment_is_rejected(tmp_path: Path) -> None:
    data = load_fixture().model_dump()
    data["destinations"][0]["audiences"].append("ghost")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="ghost"):
        load_fixture(path)


def test_config_patches_merge_deeply_and_reject_unknown_keys() -> None:
    config = merge_config(SimulatorConfig(), {"durations": {"export_job_total_s": 10}})
    assert config.durations.export_job_total_s == 10
    assert config.durations.segment_job_total_s == 780
    with pytest.raises(ValidationError, match="nonsense"):
        merge_config(config, {"guardrails": {"nonsense": 1}})
    with pytest.raises(ValidationError):
        merge_config(config, {"failure_rates": {"segment_job": 2}})


def test_a_manual_clock_never_goes_backwards() -> None:
    clock = ManualClock(100)
    assert clock.advance(5) == 105
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_concurrent_creations_never_overshoot_the_daily_quota() -> None:
    state = SimulatorState(SimulatorConfig(guardrails={"segment_jobs_per_day_per_sandbox": 5}), ManualClock())
    results: list[int] = []
    barrier = threading.Barrier(20)

    def create() -> None:
        barrier.wait()
        try:
            state.create_segment_job([SEG_US])
            results.append(200)
        except SimError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 5 + [429] * 15
    assert len(state.segment_jobs) == 5

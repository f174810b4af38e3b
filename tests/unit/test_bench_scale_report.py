"""make bench-scale's figures line: written once, read back by make bench, judged against issue 13's targets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench_scale import figures, render
from tests.benchkit.report import SCALE_FIGURES, read_scale_figures, scale_targets, targets


def inflight(runs: int, rss: float, bare: float, redis_mb: float) -> dict[str, object]:
    bare_worker = {"rss_total_mb": bare, "tasks": 2, "rss_idle_mb": bare, "rss_main_mb": bare, "rss_children_mb": []}
    return {"runs": runs, "tasks": 2 * (runs + 1), "rss_total_mb": rss, "bare": bare_worker,
            "redis_used_delta_mb": redis_mb}  # fmt: skip


def test_targets_at_the_largest_size_against_bare_and_the_smallest() -> None:
    fig = figures({10_000: inflight(10_000, 230, 213, 48.0), 100_000: inflight(100_000, 260, 200, 390.0)}, "T")
    rss, flat, kb = scale_targets(fig)
    assert "100,000 runs in flight" in rss.figure and "(200,002)" in rss.figure
    assert rss.met is False and rss.measured.startswith("1.30x")
    assert flat.met is False and flat.measured.startswith("+13.0 %")
    assert kb.met is True and kb.measured == "3.99 KB"


def test_flat_memory_is_met_within_ten_percent() -> None:
    fig = figures({10_000: inflight(10_000, 230, 213, 48.0), 100_000: inflight(100_000, 240, 213, 480.0)}, "T")
    rss, flat, kb = scale_targets(fig)
    assert rss.met and flat.met and not kb.met


def test_make_bench_reads_back_the_figures_with_their_date(tmp_path: Path) -> None:
    assert read_scale_figures(tmp_path / "absent.md") is None
    fig = figures({10: inflight(10, 200, 200, 0.04)}, "2026-12-01 19:00 UTC")
    path = tmp_path / "scale.md"
    path.write_text("# Benchmarks at scale\n\n" + SCALE_FIGURES + json.dumps(fig) + " -->\n")
    assert read_scale_figures(path) == fig
    rows = [t for t in targets({"scale": fig}) if "bench-scale" in t.figure]
    assert rows and all("2026-12-01 19:00 UTC" in t.figure and t.met is not None for t in rows)
    (absent,) = [t for t in targets({}) if "bench-scale" in t.figure]  # never ran here: one row, not measured
    assert absent.met is None and absent.measured == "-"


def test_render_carries_the_line_it_is_read_back_from(tmp_path: Path) -> None:
    r = inflight(10, 200, 190, 0.04)
    r |= {"concurrency": 2, "speed": 0.01, "enqueue_s": 1.0, "all_waiting_s": 2.0, "rss_idle_mb": 190,
          "rss_main_mb": 80, "rss_children_mb": [60, 60], "rss_peak_mb": 201, "pss_total_mb": 150,
          "redis_keys_delta": 40, "key_memory": {}, "first_repoll_s": 3000,
          "held": {"scheduled": 0, "reserved": 0, "active": 0, "unacked": 0, "queued": 0}}  # fmt: skip
    meta = {"started": "2026-12-01 19:00 UTC", "elapsed_s": 3.0, "host": {}, "loads": {}, "redis": "Redis."}
    path = tmp_path / "scale.md"
    path.write_text(render({10: r}, meta))
    assert "## 10 runs in flight" in path.read_text()
    assert read_scale_figures(path) == figures({10: r}, "2026-12-01 19:00 UTC")

"""``status`` on a small terminal: the newest events and the current wait stay visible (issue 14, item 6)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rich.console import Console

from aep_activator.workers.cli import watching as producing


def record(events: int, **kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "run_id": "0123456789abcdef0123456789abcdef", "status": "running", "step": "poll_export_job", "terminal": False,
        "waiting_reason": "export job 103 is PROCESSING", "wait_until": 1_800_000_000.0,
        "timeline": [{"t": 1_700_000_000 + i, "step": "poll_export_job", "event": "checked", "detail": f"event {i}"}
                     for i in range(events)],
        "segment_job_id": "d3b4", "export_job_id": "103", "flow_runs": [], "error": None,
    }  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def screen(renderable: Any, width: int = 80, height: int = 30) -> list[str]:
    console = Console(width=width, height=height, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    console.file.close()
    return console.export_text().splitlines()


def test_watch_on_an_80_by_30_terminal_keeps_the_newest_events_and_the_wait_in_view(monkeypatch) -> None:
    monkeypatch.setattr(producing, "console", Console(width=80, height=30, file=open("/dev/null", "w")))  # noqa: SIM115
    lines = screen(producing.render_run(record(60, segment_job_id="d3b4" * 9), max_rows=producing._watch_rows(),
                                        live=True))  # fmt: skip
    producing.console.file.close()
    assert len(lines) <= 30, "\n".join(lines)
    assert all(line.rstrip().endswith(("┓", "┃", "┩", "│", "┘")) for line in lines[2:-1]), "\n".join(lines)  # no cut
    text = "\n".join(lines)
    assert "waiting: export job 103 is PROCESSING (next check 2027-01-15 08:00:00 UTC)" in " ".join(text.split())
    assert "event 59" in text and "event 0 " not in text
    assert "older events" in text


def test_every_step_shows_its_current_wait_not_only_quota_and_audience_waits() -> None:
    text = " ".join("\n".join(screen(producing.render_run(record(3)))).split())
    assert "waiting: export job 103 is PROCESSING" in text
    done = " ".join("\n".join(screen(producing.render_run(record(3, status="succeeded", terminal=True)))).split())
    assert "waiting:" not in done

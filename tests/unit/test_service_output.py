"""What the worker and beat print at start-up: rich text, or with LOG_FORMAT=json one JSON line each."""

from __future__ import annotations

import json
import logging

import pytest

from aep_activator.config.settings import load_settings
from aep_activator.workers.cli.common import service_says
from aep_activator.workers.logs import json_worker_start


def test_with_json_logs_a_start_up_notice_is_one_json_line_of_its_plain_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    markup = "worker self-check [yellow]warning:[/yellow] keep \\[this] text"
    service_says(load_settings(), markup, level=logging.WARNING)
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "aep_activator.startup"
    assert record["message"] == "worker self-check warning: keep [this] text"


def test_with_text_logs_a_start_up_notice_is_printed_as_it_was(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "text")
    service_says(load_settings(), "beat: 1 of 2 schedules enabled (cron in UTC)", stderr=False)
    out, err = capsys.readouterr()
    assert out == "beat: 1 of 2 schedules enabled (cron in UTC)\n" and err == ""


class FakeWorker:
    quiet = False


@pytest.mark.parametrize(("fmt", "quiet"), [("json", True), ("text", False)])
def test_the_worker_banner_is_silenced_only_for_json_logs(
    monkeypatch: pytest.MonkeyPatch, fmt: str, quiet: bool
) -> None:
    monkeypatch.setenv("LOG_FORMAT", fmt)
    monkeypatch.setattr("aep_activator.tasks.runtime.current_settings", load_settings)
    worker = FakeWorker()
    warnings_log = logging.getLogger("py.warnings")
    try:
        json_worker_start(sender="w1", instance=worker)
        assert worker.quiet is quiet
        assert bool(warnings_log.handlers) is quiet  # warnings as JSON lines, only for json
    finally:
        logging.captureWarnings(False)
        warnings_log.handlers[:] = []
        warnings_log.propagate = True

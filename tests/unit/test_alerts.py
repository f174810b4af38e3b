"""deploy/prometheus/alerts.yml and the Grafana dashboard: valid, and naming only metrics the exporter serves.

``promtool check rules`` and ``promtool test rules`` (Debian's prometheus package; .ci/run installs it) validate
the rules and prove the quota, stuck-run and no-worker alerts fire on the series that should fire them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aep_activator.aep.coordination.metrics import Snapshot
from aep_activator.workers.api import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "aep-activator.json"
NAME = re.compile(r"\baep_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def exported_names() -> set[str]:
    """Every sample name the exporter writes, from a scrape of a snapshot with every family present."""
    snap = Snapshot(now=1000.0, counters={"req|/r|GET|200": 1, "req_ms|/r": 5, "req_le|/r|0.05": 1,
                    "step_ms|s": 5, "step_le|s|0.5": 1, "exec|s|done": 1, "adopt|s": 1, "conflict": 1,
                    "recover|rewake": 1, "finish|succeeded": 1, "callback|delivered": 1},
                    runs={"queued": 0})  # fmt: skip
    families = [*metrics.quota_metrics([]), *metrics.run_metrics(snap), *metrics.aep_metrics(snap)]
    names = {f.name for f in families}
    for family in families:
        names |= {s.name for s in family.samples}
    return names


def used_names(expr: str) -> set[str]:
    return set(NAME.findall(expr))


def test_every_name_the_exporter_serves_is_an_aep_metric_and_the_issue_s_names_are_there() -> None:
    names = exported_names()
    for wanted in ("aep_quota_used", "aep_quota_reserved", "aep_quota_limit", "aep_quota_reset_timestamp_seconds",
                   "aep_runs", "aep_run_oldest_open_age_seconds", "aep_run_step_duration_seconds_bucket",
                   "aep_run_recoveries_total", "aep_run_adoptions_total", "aep_conflicts_deferred_total",
                   "aep_requests_total", "aep_request_duration_seconds_bucket", "aep_delay_queue_depth"):  # fmt: skip
        assert wanted in names, wanted


def test_the_alert_rules_name_only_metrics_the_exporter_serves() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"AEPQuotaDailyAbove80Percent", "AEPQuotaYearlyAbove80Percent",
                                           "AEPRunStuckPastWatchdogBound", "AEPServerErrorRate", "AEPRateLimited",
                                           "AEPNoWorkerConsuming"}  # fmt: skip
    names = exported_names()
    for rule in rules:
        for used in used_names(rule["expr"]):
            assert used in names, f"{rule['alert']}: {used} is not exported"


def test_the_dashboard_parses_and_every_panel_queries_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported_names()
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = used_names(target["expr"])
            assert used, f"{panel['title']}: no aep metric in {target['expr']}"
            assert used <= names, f"{panel['title']}: {used - names} not exported"


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing: apt-get install -y prometheus (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_promtool_accepts_the_rules_and_their_unit_tests_pass(promtool: str) -> None:
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=RULES.parent, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert unit.returncode == 0, unit.stdout + unit.stderr


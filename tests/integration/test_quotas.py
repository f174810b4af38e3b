"""Quotas as AEP counts them, through real workers and the simulator over HTTP: sandboxes, yearly limits,
admission answers that come true in order, the share held back for schedules, and reconciliation."""

from __future__ import annotations

import time

import pytest
import requests

from aep_activator.aep.api import paths
from aep_activator.aep.api.errors import QuotaExhausted
from aep_activator.aepsim.config import Guardrails, SimulatorConfig
from aep_activator.tasks import runtime
from aep_activator.tasks.producer import InvalidRequest, quota_usage, start
from tests.integration.conftest import wait_for_runs

pytestmark = pytest.mark.integration

S3, SFTP = "b0780cb5-2bb7-4409-bf2c-c625ca818588", "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
AUD = ["4afe34ae-8c98-4513-8a1d-67ccaa54bc05", "7f04b2a6-5f7e-4e7f-9b3a-6d3c4e2a1b5c"]
UNMAPPED = "db8961e9-d52f-45bc-b3fb-76d0382a6851"
ROOMY = Guardrails(segment_jobs_per_day_per_sandbox=1000, adhoc_jobs_per_day_per_org=1000,
                   segment_jobs_per_year_production=1000, segment_jobs_per_year_development=1000)  # fmt: skip


def seg(audience: str = AUD[0], **extra: object) -> dict[str, object]:
    return {"activation_info": {S3: [audience]}, "version": 2, **extra}


def adhoc(audience: str = AUD[0], **extra: object) -> dict[str, object]:
    return {"activation_info": {S3: [audience]}, "version": 2, "segment_job": False, **extra}


def used(name: str, scope_end: str) -> int:
    (u,) = [u for u in quota_usage() if u.name == name and u.scope.endswith(scope_end)]
    return u.used


def activated_at(record) -> float:  # type: ignore[no-untyped-def]
    return next(e["t"] for e in record.timeline if e["event"] == "activated")


def test_runs_in_two_sandboxes_spend_separate_daily_and_yearly_quotas(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=31, guardrails=ROOMY),
                       env={"QUOTA_SEGMENT_JOBS_PER_DAY": "1", "AEP_SANDBOXES": "prod,dev",
                            "AEP_SANDBOX_TYPES": "prod:production,dev:development"})  # fmt: skip
    stack.wait_worker_ready(stack.start_worker())
    prod, dev = start(seg()), start(seg(AUD[1], sandbox="dev"))
    third = start(seg(AUD[1]))  # prod again: its day is used up
    assert (prod.admission.verdict, dev.admission.verdict, third.admission.verdict) == ("now", "now", "waits")
    runs = wait_for_runs(stack, [prod.run_id, dev.run_id], timeout_s=60)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert (used("segment_jobs", "/prod"), used("segment_jobs", "/dev")) == (1, 1)
    assert (used("segment_jobs_year", "/prod"), used("segment_jobs_year", "/dev")) == (1, 1)
    limits = {u.scope.rsplit("/", 1)[1]: u.limit for u in quota_usage() if u.name == "segment_jobs_year"}
    assert limits == {"prod": 50, "dev": 100}
    sandboxes = [e["headers"].get("X-Sandbox-Name") or e["headers"].get("x-sandbox-name")
                 for e in stack.journal("POST", paths.SEGMENT_JOBS)]  # fmt: skip
    assert sorted(sandboxes) == ["dev", "prod"]
    third_now = runtime.runtime().ledger.get(third.run_id)
    assert third_now is not None and third_now.wait_kind == "quota"
    with pytest.raises(InvalidRequest, match="AEP_SANDBOXES"):
        start(seg(sandbox="stage"))
    assert stack.posts().get(paths.SEGMENT_JOBS) == 2


def test_the_segment_job_over_a_yearly_limit_waits_for_the_next_year_or_is_refused(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=32, guardrails=ROOMY),
                       env={"QUOTA_SEGMENT_JOBS_PER_DAY": "10",
                            "QUOTA_SEGMENT_JOBS_PER_YEAR_PRODUCTION": "2"})  # fmt: skip
    stack.wait_worker_ready(stack.start_worker())
    done = [start(seg(AUD[i])).run_id for i in range(2)]
    wait_for_runs(stack, done, timeout_s=60)
    with pytest.raises(QuotaExhausted):
        start(seg(on_quota="fail"))
    waiting = start(seg())
    assert waiting.admission is not None and waiting.admission.verdict == "waits"
    year_end = next(u.reset_at for u in quota_usage() if u.name == "segment_jobs_year")
    assert waiting.admission.opens_at == year_end
    deadline = time.monotonic() + 20
    while (r := runtime.runtime().ledger.get(waiting.run_id)).wait_kind != "quota":
        assert time.monotonic() < deadline, r
        time.sleep(0.1)
    assert r.wait_until is not None and r.wait_until >= year_end
    assert stack.posts().get(paths.SEGMENT_JOBS) == 2, "the third job was never POSTed"


def test_admission_answers_come_true_in_a_short_window_in_line_schedules_first(make_stack):
    window = 6
    stack = make_stack(SimulatorConfig(speed=600, seed=33, guardrails=ROOMY),
                       env={"QUOTA_ADHOC_PER_DAY": "1", "QUOTA_WINDOW_S": str(window), "QUOTA_EDGE_S": "0",
                            "POLL_ACTIVATION_INITIAL_S": "0.2"})  # fmt: skip
    stack.wait_worker_ready(stack.start_worker())  # before the window is chosen: a loaded machine takes seconds
    # Start just after a window opens, so the three runs are admitted within one window.
    time.sleep(window - time.time() % window + 0.2)
    first, second, third = (start(adhoc(AUD[i % 2])) for i in range(3))
    assert [c.admission.verdict for c in (first, second, third)] == ["now", "waits", "waits"]
    assert third.admission.opens_at == second.admission.opens_at + window
    # A schedule admitted last goes ahead of the producers still waiting: each of them moves one window on.
    scheduled = start(adhoc(AUD[0], started_by="schedule:nightly"))
    assert (scheduled.admission.verdict, scheduled.admission.opens_at) == ("waits", second.admission.opens_at)
    assert scheduled.admission.place == 1
    ids = [c.run_id for c in (first, second, third, scheduled)]
    runs = {r.run_id: r for r in wait_for_runs(stack, ids, timeout_s=120)}
    assert [runs[i].status for i in ids] == ["succeeded"] * 4

    def window_of(created) -> float:  # type: ignore[no-untyped-def]
        return activated_at(runs[created.run_id]) // window * window

    assert window_of(first) == second.admission.opens_at - window  # 'now': the window it was admitted in
    assert window_of(scheduled) == scheduled.admission.opens_at
    assert window_of(second) == second.admission.opens_at + window
    assert window_of(third) == third.admission.opens_at + window
    assert stack.posts().get(paths.ADHOC_RUN) == 4


def test_the_share_held_back_for_schedules_is_never_spent_by_a_producer_run(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=34, guardrails=ROOMY),
                       env={"QUOTA_ADHOC_PER_DAY": "2", "QUOTA_RESERVED_FOR_SCHEDULES": "adhoc:1"})  # fmt: skip
    stack.wait_worker_ready(stack.start_worker())
    producer = [start(adhoc(AUD[i])) for i in range(2)]
    assert [c.admission.verdict for c in producer] == ["now", "waits"]
    wait_for_runs(stack, [producer[0].run_id], timeout_s=30)
    schedule = start(adhoc(AUD[0], started_by="schedule:nightly"))
    assert schedule.admission.verdict == "now"
    wait_for_runs(stack, [schedule.run_id], timeout_s=30)
    # The held run wakes now and then to look at the quota (it may be 'running' at that moment); it waits.
    deadline = time.monotonic() + 20
    while (held := runtime.runtime().ledger.get(producer[1].run_id)) is None or held.status != "waiting":
        assert time.monotonic() < deadline, held
        time.sleep(0.1)
    assert held.wait_kind == "quota"
    assert stack.posts().get(paths.ADHOC_RUN) == 2


def test_a_preflight_refusal_spends_no_segment_job_slot(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=35))
    stack.wait_worker_ready(stack.start_worker())
    (run,) = wait_for_runs(stack, [start(seg(UNMAPPED)).run_id], timeout_s=30)
    assert run.status == "failed" and run.failure is not None and run.failure.kind == "preflight"
    assert paths.SEGMENT_JOBS not in stack.posts()
    assert used("segment_jobs", "/prod") == 0 and used("segment_jobs_year", "/prod") == 0


def test_out_of_band_segment_jobs_are_reconciled_and_the_next_run_waits_instead_of_a_429(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=36),
                       env={"QUOTA_SEGMENT_JOBS_PER_DAY": "2", "AEP_CONNECT_TIMEOUT_S": "1", "AEP_READ_TIMEOUT_S": "1",
                            "LOOK_SETTLE_S": "2"})  # fmt: skip
    for audience in AUD:  # a marketer clicks "Evaluate" twice in the AEP UI
        r = requests.post(stack.sim_url + "/simulator/admin/segment-jobs",
                          json={"segmentIds": [audience], "sandbox": "prod", "source": "ui"}, timeout=5)  # fmt: skip
        r.raise_for_status()
    from aep_activator.tasks.reconcile import reconcile

    young = reconcile(runtime.runtime()).sandboxes["prod"]  # maybe ours, their POSTs' answers lost: not yet
    assert (young.settling, young.newly_recorded, used("segment_jobs", "/prod")) == (2, 0, 0)
    time.sleep(4.1)  # older than twice LOOK_SETTLE_S: not one of ours whose answer was lost

    report = reconcile(runtime.runtime())
    assert report.sandboxes["prod"].external_today == 2 and report.sandboxes["prod"].newly_recorded == 2
    assert report.sandboxes["prod"].settling == 0
    assert used("segment_jobs", "/prod") == 2
    assert reconcile(runtime.runtime()).sandboxes["prod"].newly_recorded == 0, "reconciling twice counts once"
    stack.wait_worker_ready(stack.start_worker())
    created = start(seg())
    assert created.admission is not None and created.admission.verdict == "waits"
    deadline = time.monotonic() + 20
    while (r := runtime.runtime().ledger.get(created.run_id)).wait_kind != "quota":
        assert time.monotonic() < deadline, r
        time.sleep(0.1)
    assert paths.SEGMENT_JOBS not in stack.posts(), "no POST, so no 429"


def test_a_sandbox_the_credential_cannot_see_fails_the_run_at_its_first_step_with_aep_s_answer(make_stack):
    stack = make_stack(SimulatorConfig(speed=600, seed=37))
    stack.wait_worker_ready(stack.start_worker())
    (run,) = wait_for_runs(stack, [start(seg(sandbox="stage")).run_id], timeout_s=30)
    assert run.status == "failed" and run.failure is not None
    assert "Sandbox 'stage' does not exist" in run.failure.message and run.failure.step == "create_segment_job"
    # The preflight's GET met the 403: nothing was POSTed to AEP (only the IMS token), no slot spent.
    assert [p for p in stack.posts() if p.startswith("/data")] == []

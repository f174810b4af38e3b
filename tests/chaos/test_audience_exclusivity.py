"""Many concurrent runs whose audience sets overlap, across both dataflows.

What it proves: AEP never has two flow runs of one audience in progress at once (the audience locks
serialise them, even across dataflows, where AEP itself would not object), and AEP never answers
"Run already going on for audience …".
"""

from __future__ import annotations

import collections
import itertools
import random

import pytest

from aep_activator.aepsim.config import Guardrails, SimulatorConfig
from aep_activator.tasks import start_activation
from tests.chaos.conftest import ADHOC_POST, AUD_A, AUD_B, AUD_C, S3, SFTP, duplicate_ids, scaled, v2_request
from tests.integration.conftest import wait_for_runs

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

RUNS = scaled(12, 40)
SHAPES = [
    {S3: [AUD_A, AUD_B]},
    {SFTP: [AUD_B, AUD_C]},
    {S3: [AUD_B]},
    {SFTP: [AUD_B]},
    {S3: [AUD_A], SFTP: [AUD_C]},
    {S3: [AUD_A, AUD_B], SFTP: [AUD_B, AUD_C]},
    {SFTP: [AUD_C]},
]


@pytest.mark.timeout(scaled(180, 400))
def test_no_two_runs_activate_the_same_audience_at_the_same_time(make_stack, figures):
    rng = random.Random(53)
    stack = make_stack(
        SimulatorConfig(speed=300, seed=53, guardrails=Guardrails(adhoc_jobs_per_day_per_org=1000)),
        env={"QUOTA_ADHOC_PER_DAY": "1000"},
    )
    workers = [stack.start_worker(name="w1", concurrency=3), stack.start_worker(name="w2", concurrency=3)]
    for w in workers:
        stack.wait_worker_ready(w)
    shapes = [rng.choice(SHAPES) for _ in range(RUNS)]
    run_ids = [start_activation(v2_request(shape)) for shape in shapes]
    runs = wait_for_runs(stack, run_ids, timeout_s=scaled(150, 380))

    # AEP's view: every flow run with its audience and [created, completed] interval, and the run of
    # ours that owns it. One run may activate an audience on two dataflows at once (one ad-hoc job);
    # two different runs must never overlap on an audience.
    owner = {o["run_id"]: r.run_id for r in runs for o in r.flow_runs}
    flow_runs = list(stack.simulator.state.flow_runs.values())
    spans = collections.defaultdict(list)
    for fr in flow_runs:
        spans[fr.audience].append((fr.created, fr.ends_at, owner.get(fr.id), fr.flow_id))
    overlaps = []
    for audience, items in spans.items():
        items.sort()
        for a, b in itertools.combinations(items, 2):
            if a[2] != b[2] and b[0] < a[1] and a[0] < b[1]:
                overlaps.append((audience, a, b))
    answers = collections.Counter(e["status"] for e in stack.journal("POST", ADHOC_POST))
    already = sum("already going on" in (e.get("detail") or "") for r in runs for e in r.timeline)
    lock_waits = sum("audiences busy" in (e.get("detail") or "") for r in runs for e in r.timeline)
    expected_flow_runs = sum(len(a) for shape in shapes for a in shape.values())
    figures("runs", f"{RUNS}: {dict(collections.Counter(r.status for r in runs))}")
    figures("flow runs per audience", {a[:8]: len(v) for a, v in sorted(spans.items())})
    figures("flow runs of two runs overlapping on one audience", len(overlaps))
    figures("ad-hoc POST answers", dict(answers))
    figures("waits on a busy audience (our lock) / on AEP's 'Run already going on'", f"{lock_waits} / {already}")

    assert all(r.status == "succeeded" for r in runs), [(r.run_id, r.status, r.error) for r in runs]
    assert not overlaps, overlaps
    assert answers == {200: RUNS}, answers
    assert already == 0
    assert len(flow_runs) == expected_flow_runs and None not in owner.values()
    assert duplicate_ids(runs, segment=False, export=False) == {"flow_run": 0}

"""Which quotas a POST counts against, and the scope each one is kept per: the rule, written once.

- ``adhoc``: ad-hoc activation jobs, 20 a day **per org** (the ad-hoc activation tutorial);
- ``segment_jobs``: on-demand segment jobs (Flexible Audience Evaluation), 2 a day **per sandbox**
  (https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/methods/flexible-audience-evaluation).

A scope is the org id for ``adhoc`` and ``{org}/{sandbox}`` for ``segment_jobs``: sandboxes of two
orgs never share a quota, and an org id cannot collide with a sandbox name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aep_activator.aep.coordination.quota import DailyWindow, QuotaSpec


class Quota(StrEnum):
    ADHOC = "adhoc"
    SEGMENT_JOBS = "segment_jobs"


DEFAULT_SANDBOX = "default"
"""The scope name of AEP's default sandbox (no ``x-sandbox-name`` header sent)."""


@dataclass(frozen=True)
class QuotaLimits:
    adhoc_per_day: int
    segment_jobs_per_day: int
    window_s: int = 86400


def scope(quota: Quota, *, org_id: str, sandbox: str | None) -> str:
    if not org_id:
        raise ValueError("a quota scope needs the org id (AEP_ORG_ID)")
    if quota is Quota.ADHOC:
        return org_id
    return f"{org_id}/{sandbox or DEFAULT_SANDBOX}"


def specs(quota: Quota, limits: QuotaLimits, *, org_id: str, sandbox: str | None) -> list[QuotaSpec]:
    """The quota windows one POST of ``quota`` spends a slot of."""
    limit = limits.adhoc_per_day if quota is Quota.ADHOC else limits.segment_jobs_per_day
    window = DailyWindow(limits.window_s)
    return [QuotaSpec(quota.value, scope(quota, org_id=org_id, sandbox=sandbox), limit, window)]

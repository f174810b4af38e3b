"""Which quotas a POST counts against, and the scope each one is kept per: the rule, written once.

- ``adhoc``: ad-hoc activation jobs, 20 a day **per org** (the ad-hoc activation tutorial);
- ``segment_jobs``: on-demand segment jobs (Flexible Audience Evaluation), 2 a day **per sandbox**, and
  ``segment_jobs_year``: 50 a year per production sandbox, 100 per development sandbox, the year opening
  on the contract's anniversary (``QUOTA_YEAR_START``)
  (https://experienceleague.adobe.com/en/docs/experience-platform/segmentation/methods/flexible-audience-evaluation).

A segment job spends a daily and a yearly slot together (one script), or neither. A scope is the org id
for ``adhoc`` and ``{org}/{sandbox}`` for the segment-job quotas: sandboxes of two orgs never share a
quota, and an org id cannot collide with a sandbox name. A sandbox whose type is not configured
(``AEP_SANDBOX_TYPES``) is taken as production, the smaller yearly limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aep_activator.aep.coordination.quota import DailyWindow, QuotaSpec, YearlyWindow


class Quota(StrEnum):
    ADHOC = "adhoc"
    SEGMENT_JOBS = "segment_jobs"


YEARLY = "segment_jobs_year"
"""The yearly segment-job quota's name (its windows are kept apart from the daily ones)."""

DEFAULT_SANDBOX = "default"
"""The scope name of AEP's default sandbox (no ``x-sandbox-name`` header sent)."""


@dataclass(frozen=True)
class QuotaLimits:
    adhoc_per_day: int
    segment_jobs_per_day: int
    window_s: int = 86400
    segment_jobs_per_year: dict[str, int] = field(default_factory=lambda: {"production": 50, "development": 100})
    year_start: tuple[int, int] = (1, 1)
    sandbox_types: dict[str, str] = field(default_factory=dict)
    reserved_for_schedules: dict[str, int] = field(default_factory=dict)

    def sandbox_type(self, sandbox: str | None) -> str:
        return self.sandbox_types.get(sandbox or DEFAULT_SANDBOX, "production")

    def daily(self, quota: Quota) -> int:
        return self.adhoc_per_day if quota is Quota.ADHOC else self.segment_jobs_per_day


def quotas_of(segment_job: bool) -> list[Quota]:
    """The quotas a run spends: an ad-hoc activation always, an on-demand segment job when it runs one."""
    return [*([Quota.SEGMENT_JOBS] if segment_job else []), Quota.ADHOC]


def scope(quota: Quota | str, *, org_id: str, sandbox: str | None) -> str:
    if not org_id:
        raise ValueError("a quota scope needs the org id (AEP_ORG_ID)")
    if quota == Quota.ADHOC:
        return org_id
    return f"{org_id}/{sandbox or DEFAULT_SANDBOX}"


def specs(
    quota: Quota, limits: QuotaLimits, *, org_id: str, sandbox: str | None, schedule: bool = True
) -> list[QuotaSpec]:
    """The quota windows one POST of ``quota`` spends a slot of: the daily one first (runs spend it in line).

    A run that no beat schedule started (``schedule=False``) may not spend the daily slots held back for
    schedules (``QUOTA_RESERVED_FOR_SCHEDULES``): its daily limit is lower by that many.
    """
    daily = limits.daily(quota) - (0 if schedule else limits.reserved_for_schedules.get(quota.value, 0))
    where = scope(quota, org_id=org_id, sandbox=sandbox)
    out = [QuotaSpec(quota.value, where, daily, DailyWindow(limits.window_s), line=True)]
    if quota is Quota.SEGMENT_JOBS:
        yearly = limits.segment_jobs_per_year[limits.sandbox_type(sandbox)]
        out.append(QuotaSpec(YEARLY, where, yearly, YearlyWindow(*limits.year_start)))
    return out

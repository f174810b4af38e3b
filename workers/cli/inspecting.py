"""Inspecting commands: ``config check``, the settings (secrets masked) and a ✓/✗ line per dependency.

Exit 0 when every check passes, 3 when Redis cannot be reached, 2 for any other failed check. Each check
imports the runtime and the client when it runs, not when the CLI loads.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from aep_activator.config.settings import Settings
from aep_activator.workers.cli.common import console, fail, redis_unreachable, settings_or_exit, use_settings


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.option("--aep/--no-aep", "need_aep", default=True, help="Also require the AEP credentials.")
@click.option("--online", is_flag=True, help="Also fetch an IMS token and make one read-only AEP call.")
def config_check(need_aep: bool, online: bool) -> None:
    """Validate the environment, print the settings (secrets masked) and check each dependency (✓/✗).

    Exit 0 when every check passes, 3 when Redis cannot be reached, 2 for any other failed check.
    """
    s = settings_or_exit()
    table = Table(title="aep-activator settings", show_header=True)
    table.add_column("variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in s.masked().items():
        table.add_row(name, "-" if value is None or value == "" else str(value))
    console.print(table)
    checks = _config_checks(s, need_aep=need_aep, online=online)
    for ok, label, detail in checks:
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        console.print(f"{mark} {label}: {detail}", soft_wrap=True)
    failed = [label if label.isupper() else f"{label} ({detail})" for ok, label, detail in checks if not ok]
    if failed:
        unreachable = any(not ok and detail.startswith("cannot reach") for ok, _, detail in checks)
        fail(f"configuration check failed: {', '.join(failed)}", code=3 if unreachable else 2)
    console.print("[green]configuration OK[/green]")


def _config_checks(s: Settings, *, need_aep: bool, online: bool) -> list[tuple[bool, str, str]]:
    """``(ok, what, detail)`` per check: Redis answers, it is noeviction, the org id's shape, AEP (optionally live)."""
    from aep_activator.tasks.runtime import runtime
    from aep_activator.workers.checks import check_redis_policy

    checks: list[tuple[bool, str, str]] = []
    use_settings(s)
    rt: Any = None
    try:
        runtime().redis.ping()
    except ValueError as exc:
        checks.append((False, "REDIS_URL", f"not a valid Redis URL ({exc})"))
    except Exception as exc:
        checks.append((False, "REDIS_URL", redis_unreachable(exc).removeprefix("REDIS_URL: ")))
    else:
        rt = runtime()
        checks.append((True, "REDIS_URL", "Redis answers"))
        policy = check_redis_policy(rt.redis)
        checks.append((not any(p.fatal for p in policy), "maxmemory-policy",
                       "; ".join(p.message for p in policy) or "noeviction"))  # fmt: skip
    if need_aep:
        problems = s.aep_problems()
        checks.append((not problems, "AEP credentials", "; ".join(problems) or "set"))
        org = s.aep_org_id or ""
        if org:
            shaped = org.endswith("@AdobeOrg") and len(org) > len("@AdobeOrg")
            checks.append((shaped, "AEP_ORG_ID", "an IMS org id" if shaped else f"{org!r} does not end in @AdobeOrg"))
        if online and not problems and rt is not None:
            checks.append(_online_check(rt))
    return checks


def _online_check(rt: Any) -> tuple[bool, str, str]:
    """An IMS token, then one read-only AEP call (``GET /segment/jobs?limit=1``): no quota is spent."""
    try:
        rt.client.segment_jobs.list(limit=1)
    except Exception as exc:
        return False, "AEP (online)", f"{type(exc).__name__}: {exc}"
    return True, "AEP (online)", f"IMS token fetched; GET segment jobs answered ({rt.settings.aep_base_url})"


COMMANDS = (config,)

"""The run console: server-rendered pages (Jinja2, no JavaScript build, no SPA) under ``/console``.

- ``/console/runs``: recent runs (status, sandbox, who started them, age) and the quota gauges;
- ``/console/runs/{id}``: one run's step timeline (AEP ids and statuses, waits and their reasons,
  recoveries, who cancelled or resumed), with Cancel and Resume buttons for the ops role;
- ``/console/quota``: every quota with its reset time.

A page showing an open run reloads itself every :data:`REFRESH_S` (``<meta http-equiv="refresh">``).
Sign-in: the login form takes an API key and sets it as an HttpOnly, SameSite=Strict cookie (the key
is checked on every request, like a header, so any API replica accepts it); SameSite=Strict keeps
other sites from posting the Cancel and Resume forms with it, and those forms also refuse a foreign
``Origin``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from aep_activator.aep.coordination.runs import TERMINAL, RunStatus
from aep_activator.workers.api import views
from aep_activator.workers.api.auth import COOKIE, console_user
from aep_activator.workers.api.keys import KeyRing, Principal

REFRESH_S = 3
router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


templates.env.filters["when"] = _when
templates.env.filters["duration"] = _duration


def _page(request: Request, name: str, who: Principal, **context: Any) -> HTMLResponse:
    context.update(who=who, now=time.time(), auth=request.app.state.keyring is not None)
    return templates.TemplateResponse(request, name, context)


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = urlsplit(origin).netloc
        if host != request.headers.get("host"):
            raise HTTPException(403, "cross-site form refused")


@router.get("/login")
def login_form(request: Request, next: str = "/console/runs", failed: int = 0) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": _local(next), "failed": failed, "who": None})


@router.post("/login")
async def login(request: Request) -> Response:
    _same_origin(request)
    form = parse_qs((await request.body()).decode(errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _local((form.get("next") or ["/console/runs"])[0])
    ring: KeyRing | None = request.app.state.keyring
    if ring is not None and (not key or ring.verify(key) is None):
        return RedirectResponse(f"/console/login?failed=1&next={target}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    if ring is not None:
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            path="/", max_age=12 * 3600)  # fmt: skip
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """Only a console path: never an open redirect."""
    return target if target.startswith("/console/") and "//" not in target else "/console/runs"


@router.get("/runs")
def runs_page(request: Request, who: Annotated[Principal, Depends(console_user)],
              status: RunStatus | None = None) -> HTMLResponse:  # fmt: skip
    from aep_activator.tasks.producer import quota_usage

    runs = [views.summary(r) for r in views.recent_runs(status=status, limit=50)]
    refresh = REFRESH_S if any(not r["terminal"] for r in runs) else None
    return _page(request, "runs.html", who, runs=runs, status=status.value if status else "",
                 statuses=[s.value for s in RunStatus], quotas=[views.quota(u) for u in quota_usage()],
                 refresh=refresh)  # fmt: skip


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, who: Annotated[Principal, Depends(console_user)]) -> HTMLResponse:
    from aep_activator.tasks.producer import get_run

    record = get_run(run_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id}")
    run = views.detail(record)
    refresh = None if record.status in TERMINAL else REFRESH_S
    return _page(request, "run.html", who, run=run, refresh=refresh,
                 can_cancel=who.can_operate and record.status not in TERMINAL,
                 can_resume=who.can_operate and record.status is RunStatus.FAILED)  # fmt: skip


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: str, who: Annotated[Principal, Depends(console_user)]) -> Response:
    from aep_activator.tasks.producer import cancel_run

    _operate(request, who)
    try:
        cancel_run(run_id, actor=who.actor)
    except KeyError:
        raise HTTPException(404, f"no run {run_id}") from None
    return RedirectResponse(f"/console/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/resume")
def resume(request: Request, run_id: str, who: Annotated[Principal, Depends(console_user)]) -> Response:
    from aep_activator.tasks.producer import resume_run

    _operate(request, who)
    try:
        resume_run(run_id, actor=who.actor)
    except KeyError:
        raise HTTPException(404, f"no run {run_id}") from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse(f"/console/runs/{run_id}", status_code=303)


def _operate(request: Request, who: Principal) -> None:
    _same_origin(request)
    if not who.can_operate:
        raise HTTPException(403, f"key {who.name} has role {who.role}; cancel and resume need role ops")


@router.get("/quota")
def quota_page(request: Request, who: Annotated[Principal, Depends(console_user)]) -> HTMLResponse:
    from aep_activator.tasks.producer import quota_usage

    return _page(request, "quota.html", who, quotas=[views.quota(u) for u in quota_usage()], refresh=None)

"""The API server's app: ``create_app(keyring)`` (None only with ``--insecure-no-auth``).

Routes: ``/v1/…`` (routes.py), the console under ``/console`` (console.py), ``/metrics`` (any key),
``/docs`` and ``/openapi.json`` (any key: the browser's console cookie works), and ``/healthz``, the
only route open without a key. Handlers are plain functions, which FastAPI runs in its thread pool:
the producer functions they call block (Redis, a cancel that waits for a step in flight).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aep_activator.config.validation import dotted
from aep_activator.workers.api import console, metrics, routes
from aep_activator.workers.api.auth import LoginRequired, principal
from aep_activator.workers.api.keys import KeyRing, Principal

log = logging.getLogger(__name__)


def create_app(keyring: KeyRing | None) -> FastAPI:
    app = FastAPI(
        title="aep-activator",
        summary="Start, watch, cancel and resume AEP ad-hoc activation runs",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.keyring = keyring
    app.state.registry = metrics.registry()
    app.include_router(routes.router)
    app.include_router(console.router)

    @app.exception_handler(HTTPException)
    def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        lines = []
        for err in exc.errors():
            loc = [p for p in err.get("loc", ()) if p != "body"]
            where = dotted(loc[1:]) if loc and loc[0] in ("query", "header", "path") else dotted(loc)
            lines.append(f"{where or 'request'}: {str(err.get('msg', '')).removeprefix('Value error, ')}")
        header = "invalid activation request" if request.url.path == "/v1/runs" else "invalid request"
        return routes.invalid(lines, header)

    @app.exception_handler(LoginRequired)
    def login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Open: whether this process can reach Redis. Says nothing else."""
        from aep_activator.tasks.runtime import runtime

        try:
            runtime().redis.ping()
        except Exception:
            return JSONResponse({"ok": False, "redis": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True, "redis": "ok"})

    @app.get("/metrics", include_in_schema=False)
    def prometheus(who: Annotated[Principal, Depends(principal)]) -> Response:
        return Response(generate_latest(app.state.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
        return JSONResponse(jsonable_encoder(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    def docs(who: Annotated[Principal, Depends(principal)]) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="aep-activator API")

    @app.get("/", include_in_schema=False)
    @app.get("/console", include_in_schema=False)  # the address the README, the banner and the demo print
    @app.get("/console/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/runs", status_code=303)

    return app


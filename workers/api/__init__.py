"""The HTTP API and the run console (``aep-activator api``): FastAPI, served by uvicorn.

``create_app`` (app.py) builds the app; ``routes.py`` the ``/v1`` JSON routes, ``console.py`` the
server-rendered pages (templates/), ``metrics.py`` the ``/metrics`` collector, ``keys.py`` and
``auth.py`` the API keys and roles.
"""

from aep_activator.workers.api.app import create_app

__all__ = ["create_app"]

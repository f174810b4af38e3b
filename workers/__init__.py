"""Process entry points: the Celery app, the CLI, the demo. ``celery -A workers worker`` uses ``app``."""

from workers.app import create_app

app = create_app()

__all__ = ["app"]

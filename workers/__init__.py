"""Process entry points: beat, Flower, the start-up checks and the CLI (``workers/cli/``).

``celery -A workers worker`` (from the repository root) and ``celery -A aep_activator.workers worker``
(anywhere) load this module, so it holds nothing but a re-export of the one app: under either name it
is the same object, and no project module is ever imported twice.
"""

from aep_activator.tasks.celery import app

__all__ = ["app"]

"""Process entry points: beat, Flower, the start-up checks and the CLI (``workers/cli/``).

``celery -A workers worker`` (from the repository root) and ``celery -A aep_activator.workers worker``
(anywhere) load this module, so it holds nothing but a re-export of the one app: under either name it
is the same object, and no project module is ever imported twice. It also hooks LOG_FORMAT into
Celery's logging set-up (workers/logs.py).
"""

from celery.signals import after_setup_logger, after_setup_task_logger, celeryd_init

from aep_activator.tasks.celery import app
from aep_activator.workers.logs import celery_logging, json_worker_start

# LOG_FORMAT=json in the worker and beat (pool children inherit the handlers when they fork), and the
# worker's banner and warnings then.
after_setup_logger.connect(celery_logging, weak=False)
after_setup_task_logger.connect(celery_logging, weak=False)
celeryd_init.connect(json_worker_start, weak=False)

__all__ = ["app"]

"""Logging for the entry points: ``LOG_FORMAT=text`` (the default) or ``json`` (one object per line).

Only entry points configure logging (the worker and beat through Celery's logging signals, the API
before uvicorn starts). In JSON, every line logged inside a step carries the step's fields
(tasks/logcontext.py: ``run_id``, ``step``, ``attempt``, ``seq``, the AEP ids) and the ``x-request-id``
of its latest AEP call (``{run_id}.{step}.{seq}.{n}``, aep/api/client.py ``tracing``). Secrets never
reach a log line: nothing here logs a request, a header or a setting.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from aep_activator.aep.api.client import current_request_id
from aep_activator.tasks import logcontext

FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


class StepFields(logging.Filter):
    """Adds the current step's fields and request id to each record (None outside a step)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in logcontext.current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        rid = current_request_id()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(FIELDS, rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
                         timestamp=False)  # fmt: skip


def use_json(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        handler.setFormatter(json_formatter())
        if not any(isinstance(f, StepFields) for f in handler.filters):
            handler.addFilter(StepFields())


def json_notice(message: str, level: int = logging.INFO) -> None:
    """One JSON line, shaped like every other (``time``, ``level``, ``logger``, ``message``), for what a
    service says before Celery's logging is set up (start-up checks, beat's schedule summary)."""
    record = logging.LogRecord("aep_activator.startup", level, __file__, 0, message, None, None)
    print(json_formatter().format(record), file=sys.stderr, flush=True)


def json_worker_start(**kwargs: Any) -> None:
    """``celeryd_init``, before Celery sets up logging: with LOG_FORMAT=json the worker prints no banner (a
    block of text that no JSON reader can parse; what it says is in the worker's log records and in
    ``celery inspect``), and Python warnings (Celery's about running as root comes next) are JSON lines."""
    from aep_activator.tasks.runtime import current_settings

    try:
        fmt = current_settings().log_format
    except Exception:  # bad settings are reported by the worker's own start-up
        return
    if fmt != "json":
        return
    instance = kwargs.get("instance")
    if instance is not None and hasattr(instance, "quiet"):
        instance.quiet = True
    logging.captureWarnings(True)
    warnings_log = logging.getLogger("py.warnings")
    if not warnings_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        use_json([handler])
        warnings_log.addHandler(handler)
        warnings_log.propagate = False


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    """For a process that sets up its own logging (the API): one stderr handler on the root logger."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        use_json([handler])
    else:
        handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def celery_logging(**kwargs: Any) -> None:
    """``after_setup_logger`` / ``after_setup_task_logger``: switch Celery's handlers to JSON if asked."""
    from aep_activator.tasks.runtime import current_settings

    try:
        fmt = current_settings().log_format
    except Exception:  # bad settings are reported by the worker's own start-up
        return
    logger = kwargs.get("logger")
    if fmt == "json" and isinstance(logger, logging.Logger):
        use_json(list(logger.handlers))
        # A warning is a JSON line too (beat has no celeryd_init: this is where its warnings are caught).
        logging.captureWarnings(True)

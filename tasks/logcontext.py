"""The fields every log line of a step carries: run id, step, attempt, carrier seq and the AEP ids.

The runner binds them for one execution (:func:`bind`); the JSON formatter of the entry points
(workers/logs.py) adds them, and the current ``x-request-id``, to every record logged inside. Library
code logs as usual and never configures logging.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aep_activator.aep.coordination.runs import RunRecord

_fields: ContextVar[dict[str, Any] | None] = ContextVar("aep_log_fields", default=None)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line inside the block (nested blocks add to the outer ones)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def current() -> dict[str, Any]:
    return dict(_fields.get() or {})


def of_record(record: RunRecord, step: str) -> dict[str, Any]:
    """The fields of one execution of ``step`` of ``record``: ids only, never the request or a secret."""
    return {
        "run_id": record.run_id,
        "step": step,
        "attempt": record.attempt,
        "seq": record.seq,
        "segment_job_id": record.segment_job_id,
        "export_job_id": record.export_job_id,
        "flow_run_ids": [o.get("run_id") for o in record.flow_runs] or None,
    }

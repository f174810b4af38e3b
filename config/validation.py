"""The one formatter of pydantic validation errors: a line per bad field, naming where and why.

It lives in the leaf package so that every layer can use it: the settings (locations are environment
variables), the producer and the schedule file (request field paths), and the simulator (wire paths,
through ``aep.api.models``). The input value is never printed: it could be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pydantic import ValidationError

Loc = Sequence[int | str]


def dotted(loc: Loc) -> str:
    """``export_job.destination.datasetId``."""
    return ".".join(str(p) for p in loc)


def env_var(loc: Loc) -> str:
    """``AEP_BASE_URL`` (a settings field's environment variable)."""
    return "_".join(str(p) for p in loc).upper()


def wire_path(loc: Loc) -> str:
    """``[0].segmentId`` (a path into a JSON body)."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def error_lines(exc: ValidationError, *, where: Callable[[Loc], str] = dotted, empty: str = "request") -> list[str]:
    """``"<where>: <why>"`` for every error of ``exc``; ``empty`` names a model-level error."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        loc = where(err["loc"])
        # A model-level error that names its own field or variable ("export_job: …", "VISIBILITY_TIMEOUT_S must
        # …") is shown under that name, not under ``empty`` ("SETTINGS:", "request:").
        lines.append(msg if not loc and NAMES_ITSELF.match(msg) else f"{loc or empty}: {msg}")
    return lines


NAMES_ITSELF = re.compile(r"^([a-z_][\w.]*: |[A-Z][A-Z0-9_]{2,}[: ])")


def describe_validation_error(
    exc: ValidationError, header: str, *, where: Callable[[Loc], str] = dotted, empty: str = "request"
) -> str:
    """``header`` then one indented line per bad field."""
    return f"{header}:\n  " + "\n  ".join(error_lines(exc, where=where, empty=empty))

"""Shared pieces of the wire models: ids, RFC 3339 times, the request/response bases, and the parts
segment and export jobs both carry (errors, time spans, schema and merge-policy references, a DELETE's answer).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    field_validator,
)

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
"""An AEP id: an opaque, non-empty string."""


def _opaque_id(value: Any) -> Any:
    # Export job ids are numbers in every example but strings in v1 `exportIds` examples: treat as opaque.
    if isinstance(value, bool):
        raise ValueError("an id must be a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    return value


OpaqueId = Annotated[Id, BeforeValidator(_opaque_id)]


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
"""RFC 3339 ``date-time``: full date, ``T``, full time with seconds, and an explicit offset."""


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2018-01-01T00:00:00Z")
    text = value.strip()
    # The shape check comes first: datetime.fromisoformat also takes ISO 8601 forms that RFC 3339
    # does not (week dates "2018-W01-1T…", "T00:00" without seconds, "+0500" offsets).
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp (e.g. 2018-01-01T00:00:00Z)")
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp: {exc}") from None
    return text


Rfc3339 = Annotated[str, BeforeValidator(_rfc3339)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MergePolicyRef(_Response):
    id: str | None = None
    version: int | None = None


class TimeSpan(_Response):
    startTimeInMs: int | None = None
    endTimeInMs: int | None = None
    totalTimeInMs: int | None = None


class JobError(_Response):
    code: str | None = None
    msg: str | None = None
    callStack: str | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, v: Any) -> Any:
        # The spec's example has `code: 8.0000018E7` (a number).
        return v if v is None or isinstance(v, str) else str(v)


class SchemaRef(_Response):
    name: str | None = None


class CancelResponse(_Response):
    status: bool | None = None
    message: str | None = None

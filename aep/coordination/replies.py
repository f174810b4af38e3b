"""Redis replies as text: the one bytes -> str rule, whether or not a client decodes responses."""

from __future__ import annotations

from typing import Any


def as_text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def as_texts(raw: dict[Any, Any]) -> dict[str, str]:
    """A hash reply (HGETALL) with every key and value as text."""
    return {as_text(k): as_text(v) for k, v in raw.items()}

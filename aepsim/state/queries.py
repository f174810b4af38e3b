"""The Flow Service's list query language, for ``GET /runs``: ``property`` filters, ``orderby`` and
``continuationToken`` paging. Pure functions over rendered (wire) entities.

From Adobe's "Sorting and filtering responses in the Flow Service API" guide (help/dataflows/api/
sort-and-filter.md) and S-DEST-YAML's ``/runs`` parameters:

- ``property=<path><op><value>``. ``<path>`` is a dotted path into the entity; an array on the way
  is written ``name[]`` and matches when *any* item matches ("If a property is nested within an
  array item, you must append square brackets"). ``<op>`` is ``==``, ``!=``, ``>=``, ``<=``, ``>``
  or ``<``; ``==`` takes a comma-separated list (any of them), as in ``property=id==a,b``. Several
  ``property`` parameters combine with AND. The spec's own example joins two clauses with ``&``
  inside one value, so a ``property`` value that arrives with an (encoded) ``&`` is split there too.
  Numbers compare as numbers when both sides are numeric; otherwise values compare as text.
  ``metrics.statusSummary.status`` compares case-insensitively: the spec's enum is capitalised, its
  examples and the guide use both casings (aep-api.md §12.5).
- A path that names nothing in an entity matches nothing: a filter is never refused for naming an
  unknown field (the guide: filtering "can be applied generically on any property").
- ``orderby=<path>[,<path>…]``, each with an optional ``+`` (ascending, the default) or ``-`` prefix.
  Entities missing a field sort after those that have it. Ties keep creation order, newest first
  for a descending first key.
- ``continuationToken`` is opaque to clients; here it is the base64url JSON of the order and of the
  sort key of the last entity served, so a page starts strictly after it *in the order as it is
  now*: an entity whose ``updatedAt`` moved since can land on a page already read, or be skipped,
  exactly the hazard of AEP's "most recently created or updated first" (issue 10 item 7).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aep_activator.aepsim.state.errors import SimError

Op = Literal["==", "!=", ">=", "<=", ">", "<"]
_CLAUSE = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]]*?)(?P<op>==|!=|>=|<=|>|<)(?P<value>.*)$", re.ASCII | re.S)
_PATH = re.compile(r"^[A-Za-z_]\w*(\[\])?(\.[A-Za-z_]\w*(\[\])?)*$", re.ASCII)
_CASELESS = frozenset({"metrics.statusSummary.status"})


@dataclass(frozen=True)
class Clause:
    path: str
    op: Op
    values: tuple[str, ...]

    def matches(self, entity: dict[str, Any]) -> bool:
        leaves = list(resolve(entity, self.path))
        caseless = self.path in _CASELESS
        hits = any(_compare(leaf, self.op, v, caseless) for leaf in leaves for v in self.values)
        if self.op == "!=":
            # "!=" holds when no leaf equals any listed value (and the field exists).
            return bool(leaves) and not any(_compare(leaf, "==", v, caseless) for leaf in leaves for v in self.values)
        return hits


@dataclass(frozen=True)
class OrderKey:
    path: str
    descending: bool


def parse_properties(raw_values: Iterable[str], fail: Callable[[str], SimError]) -> list[Clause]:
    """Every clause of every ``property`` value, or ``fail(message)`` for a malformed one."""
    clauses = []
    for raw in raw_values:
        for text in raw.split("&"):
            text = text.strip()
            if not text:
                continue
            m = _CLAUSE.match(text)
            if m is None or not _PATH.match(m["path"]):
                raise fail(
                    f"Invalid property filter {text!r}: expected <path><op><value> with op one of "
                    "==, !=, >=, <=, >, < (for example flowId==<id>)"
                )
            values = tuple(v.strip() for v in m["value"].split(",")) if m["op"] in ("==", "!=") else (m["value"],)
            if not all(values):
                raise fail(f"Invalid property filter {text!r}: empty value")
            clauses.append(Clause(m["path"], m["op"], values))  # type: ignore[arg-type]
    return clauses


def parse_orderby(raw: str, fail: Callable[[str], SimError]) -> list[OrderKey]:
    keys = []
    for part in raw.split(","):
        part = part.strip()
        descending = part.startswith("-")
        path = part.lstrip("+-")
        if not path or "[]" in path or not _PATH.match(path):
            raise fail(f"Invalid orderby {raw!r}: expected fields separated by ',' each with an optional +/- prefix")
        keys.append(OrderKey(path, descending))
    return keys


def resolve(entity: Any, path: str) -> Iterable[Any]:
    """Every value at ``path`` (``name[]`` fans out over an array's items)."""
    current = [entity]
    for step in path.split("."):
        fan = step.endswith("[]")
        name = step.removesuffix("[]")
        following = []
        for node in current:
            if not isinstance(node, dict) or name not in node:
                continue
            value = node[name]
            if fan:
                if isinstance(value, list):
                    following.extend(value)
            elif not isinstance(value, list):
                following.append(value)
        current = following
    return [v for v in current if not isinstance(v, dict | list)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(text: str) -> float | None:
    return float(text) if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text, re.ASCII) else None


def _compare(leaf: Any, op: str, value: str, caseless: bool) -> bool:
    left, right = _text(leaf), value
    if caseless:
        left, right = left.lower(), right.lower()
    a, b = _number(left), _number(right)
    pair: tuple[Any, Any] = (a, b) if a is not None and b is not None else (left, right)
    if op in ("==", "!="):
        return bool(pair[0] == pair[1])
    a_, b_ = pair
    if op == ">":
        return bool(a_ > b_)
    if op == "<":
        return bool(a_ < b_)
    return bool(a_ >= b_) if op == ">=" else bool(a_ <= b_)


def required_values(clauses: Iterable[Clause], path: str) -> frozenset[str] | None:
    """The values ``path`` must equal exactly for an entity to match every clause, or None when no
    clause says so (a pre-filter only: the clauses still decide). A value that reads as a number is
    compared as one, so such a clause gives no exact set. A caseless path's values are lowercased:
    compare them with the lowercased field."""
    caseless = path in _CASELESS
    required: frozenset[str] | None = None
    for c in clauses:
        if c.path == path and c.op == "==" and all(_number(v) is None for v in c.values):
            values = frozenset(v.lower() if caseless else v for v in c.values)
            required = values if required is None else required & values
    return required


# ------------------------------------------------------------------------------------- ordering


def sort_key(entity: dict[str, Any], seq: int, order: list[OrderKey]) -> list[Any]:
    """The JSON-able sort key of one entity: each ordered field's first value (or None), then ``seq``."""
    out: list[Any] = []
    for key in order:
        values = list(resolve(entity, key.path))
        out.append(values[0] if values else None)
    out.append(seq)
    return out


def compare_keys(a: list[Any], b: list[Any], order: list[OrderKey]) -> int:
    """-1, 0 or 1: the order of two sort keys (missing fields last; ties by ``seq``)."""
    for x, y, key in zip(a, b, [*order, OrderKey("", order[0].descending if order else True)], strict=True):
        if x == y:
            continue
        if x is None or y is None:
            return 1 if x is None else -1
        c = _cmp_values(x, y)
        if c:
            return -c if key.descending else c
    return 0


def _cmp_values(x: Any, y: Any) -> int:
    if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
        return (x > y) - (x < y)
    sx, sy = _text(x), _text(y)
    return (sx > sy) - (sx < sy)


def ordered(keyed: list[tuple[list[Any], Any]], order: list[OrderKey]) -> list[tuple[list[Any], Any]]:
    def cmp(p: tuple[list[Any], Any], q: tuple[list[Any], Any]) -> int:
        return compare_keys(p[0], q[0], order)

    return sorted(keyed, key=functools.cmp_to_key(cmp))


# ------------------------------------------------------------------------------------- tokens


def encode_token(order_text: str, key: list[Any]) -> str:
    raw = json.dumps({"o": order_text, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, order_text: str, fail: Callable[[str], SimError]) -> list[Any]:
    """The sort key a continuation token carries; ``fail`` for a malformed or foreign token."""
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise fail(f"Invalid continuationToken {token[:40]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list):
        raise fail(f"Invalid continuationToken {token[:40]!r}")
    if data.get("o") != order_text:
        raise fail("continuationToken belongs to another orderby; repeat the query it came from")
    key: list[Any] = data["k"]
    return key

"""The shell commands README.md shows, as written, for tests/integration/test_readme.py.

- :func:`shell_blocks`: every fenced ``sh`` block, with the README line it starts on.
- :func:`commands`: each block's commands: ``\\`` continuations joined, comments (a ``#`` line, or two
  spaces then ``#``) removed, blank lines dropped.
- :func:`inline`: commands quoted inline in backticks that start with a given word (``docker compose``).
- :func:`python_blocks`: every fenced ``python`` block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
COMMENT = re.compile(r"(^|\s{2,})#.*$")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # README line of the opening fence
    text: str


@dataclass(frozen=True)
class Command:
    text: str
    block: int  # README line of the block's fence
    line: int  # README line of the command


def blocks(readme: Path = README) -> list[Block]:
    out: list[Block] = []
    lang, start, body = None, 0, []  # type: ignore[var-annotated]
    for n, line in enumerate(readme.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, start, body = fence.group(1), n, []
        elif fence:
            out.append(Block(lang, start, "\n".join(body)))
            lang = None
        elif lang is not None:
            body.append(line)
    return out


def shell_blocks(readme: Path = README) -> list[Block]:
    return [b for b in blocks(readme) if b.lang == "sh"]


def python_blocks(readme: Path = README) -> list[Block]:
    return [b for b in blocks(readme) if b.lang == "python"]


def commands(block: Block) -> list[Command]:
    out: list[Command] = []
    pending, first = "", 0
    for offset, raw in enumerate(block.text.splitlines(), start=1):
        line = COMMENT.sub("", raw).rstrip()
        if not line.strip() and not pending:
            continue
        if not pending:
            first = block.line + offset
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        out.append(Command(" ".join((pending + line).split()), block.line, first))
        pending = ""
    return out


def all_commands(readme: Path = README) -> list[Command]:
    return [c for b in shell_blocks(readme) for c in commands(b)]


def inline(prefix: str, readme: Path = README) -> list[str]:
    """Inline code spans starting with ``prefix`` (e.g. ``docker compose``), in README order."""
    text = readme.read_text(encoding="utf-8")
    return [m for m in re.findall(r"`([^`\n]+)`", text) if m.startswith(prefix)]

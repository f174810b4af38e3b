"""Named crash points: the places in a step's path between two side effects, where a process may die.

In production every point is a no-op (one attribute check). The fault-injection matrix
(tests/chaos/test_crash_matrix.py) installs a hook that kills the process, raises a soft time limit,
or holds the step while Redis is restarted, at one chosen point, and then checks that the run still
reaches its end with one accepted POST per step. The points, in the order a step passes them:

    entered     the execution holds the run (the fence and the lease are written)
    intent      the POST's intent and quota slots are recorded; the POST is not sent yet
    claimed     an adopted AEP job is claimed for this run; the adoption is not recorded yet
    answered    the step has AEP's answer (or its own outcome); nothing of it is recorded yet
    left        the outcome and the next carrier are recorded; the wake-up is not published yet
    published   the successor's wake-up is published; the task has not returned yet

Two more are injected by the matrix's worker outside this code: ``post-sent`` (a POST's answer has
arrived at the socket and is not read yet) and ``brpop`` (kombu popped a message and has not recorded
it as unacked). The producer's own window is closed by construction: the run record, its carrier and
its idempotency key are one script (``run_create.lua``).
"""

from __future__ import annotations

from collections.abc import Callable

POINTS = ("entered", "intent", "claimed", "answered", "left", "published")

Hook = Callable[[str, str, str], None]
"""``hook(point, run_id, step)``."""

_hook: Hook | None = None


def reached(point: str, run_id: str, step: str) -> None:
    if _hook is not None:
        _hook(point, run_id, step)


def install(hook: Hook | None) -> None:
    """Install the test hook in this process (None removes it)."""
    global _hook
    _hook = hook

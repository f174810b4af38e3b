"""Load the Lua scripts shipped in ``aep/coordination/lua`` (each is headed by its KEYS, ARGV and key layout).

A line ``--#include NAME`` is replaced by ``lua/NAME.lua`` (shared functions, e.g. ``lib_quota``), and
``--#const NAME`` by a constant this module generates from the Python side, so a rule such as the set
of terminal run statuses is written once (``runs.RunStatus``) and never copied into Lua by hand.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script

_DIRECTIVE = re.compile(r"^--#(include|const) (\w+)$", re.M)
_CONSTS: dict[str, str] = {}


def define(name: str, lua: str) -> None:
    """Make ``--#const name`` expand to ``lua`` (call at import time, before any script is loaded)."""
    _CONSTS[name] = lua


def _raw(name: str) -> str:
    return (files("aep_activator.aep.coordination") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@cache
def lua_source(name: str) -> str:
    def expand(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2)
        if kind == "include":
            return lua_source(arg)
        if arg not in _CONSTS:
            raise KeyError(f"{name}.lua uses --#const {arg}, which nothing defined")
        return _CONSTS[arg]

    return _DIRECTIVE.sub(expand, _raw(name))


def load_script(client: redis.Redis, name: str) -> Script:
    """A script object that runs by EVALSHA and falls back to EVAL after a Redis restart."""
    return client.register_script(lua_source(name))

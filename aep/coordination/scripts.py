"""Load the Lua scripts shipped in ``aep/lua`` (each file is headed by its KEYS, ARGV and key layout)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script


@cache
def lua_source(name: str) -> str:
    return (files("aep_activator.aep.coordination") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def load_script(client: redis.Redis, name: str) -> Script:
    """A script object that runs by EVALSHA and falls back to EVAL after a Redis restart."""
    return client.register_script(lua_source(name))

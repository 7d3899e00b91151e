"""The store's Lua scripts: one file each in `store/lua/`, loaded here and nowhere else.

A script file may start with `--! include <name>.lua` lines: the named files (shared local
functions) are put in front of it. Each script is registered with a client once
(`Scripts(client).<name>`); redis-py runs it by EVALSHA and loads it again on NOSCRIPT (after a
Redis restart or a failover). Every script touches the keys it is given in KEYS only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from redis.commands.core import AsyncScript

from store.connection import Client
LUA = Path(__file__).parent / "lua"
_INCLUDE = re.compile(r"^--! include (\S+\.lua)\s*$", re.MULTILINE)


# Read once, when the store is imported: a script's first use on the event loop must not wait
# for the file system.
_FILES = {p.name: p.read_text(encoding="utf-8") for p in sorted(LUA.glob("*.lua"))}
_INCLUDED = {inc for text in _FILES.values() for inc in _INCLUDE.findall(text)}


def source(name: str) -> str:
    """The text of `lua/<name>.lua` with its includes in front."""
    text = _FILES[f"{name}.lua"]
    return "\n".join([*(_FILES[inc] for inc in _INCLUDE.findall(text)), _INCLUDE.sub("", text)])


def names() -> list[str]:
    """Every script the store has (files that are not only included by others)."""
    return sorted(n.removesuffix(".lua") for n in _FILES if n not in _INCLUDED)


class Scripts:
    """The scripts registered with one client, by name: `await scripts.run("x", keys, args)`."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._registered: dict[str, AsyncScript] = {}

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(source(name))
        return await script(keys=keys, args=args)

"""The store is the only code that knows Redis: no other package imports a Redis client, and
every script the store has loads into a real Redis."""

from __future__ import annotations

import re
from pathlib import Path

import redis

from store import scripts

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_store_imports_redis() -> None:
    pattern = re.compile(r"^\s*(import redis|from redis\b|import redis\.asyncio)", re.M)
    offenders = [str(p.relative_to(ROOT)) for pkg in ("api", "pacer", "sip_gateway") for p in (ROOT / pkg).rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_key_names_and_scripts_live_only_in_the_store() -> None:
    """No Lua and no key names outside the store (the queue's own are the Rust core's)."""
    lua = re.compile(r"redis\.call\(")
    key = re.compile(r"[\"']dialer:[a-z]|\{c:|\{s:")
    offenders = [str(p.relative_to(ROOT)) for pkg in ("api", "pacer", "sip_gateway") for p in (ROOT / pkg).rglob("*.py")
                 if lua.search(t := p.read_text(encoding="utf-8")) or key.search(t)]
    assert offenders == []


def test_every_script_loads(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        names = scripts.names()
        assert "transition" in names and "placing" not in names  # an include is not a script
        for name in names:
            assert client.script_load(scripts.source(name))
    finally:
        client.close()

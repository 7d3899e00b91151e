"""API tokens: `keys.TOKENS` maps a token's SHA-256 to its record (JSON: id, role, name, agent,
created_at). The token itself is never stored. `Tokens` serves the API; the functions below
serve the command line (`dialer token ...`) with a blocking client."""

from __future__ import annotations

import json
from typing import Any, cast

from store import keys
from store.connection import Client, connect_sync


class Tokens:
    def __init__(self, redis: Client) -> None:
        self.redis = redis

    async def add(self, digest: str, record: dict[str, Any]) -> None:
        await self.redis.hset(keys.TOKENS, digest, json.dumps(record))

    async def record(self, digest: str) -> str | None:
        """The stored record (JSON) of the token with this digest."""
        return cast(str | None, await self.redis.hget(keys.TOKENS, digest))

    async def all(self) -> list[dict[str, Any]]:
        rows = cast(dict[str, str], await self.redis.hgetall(keys.TOKENS))
        return sorted((json.loads(v) for v in rows.values()), key=lambda r: str(r["created_at"]))

    async def revoke_agent(self, agent: str) -> list[str]:
        """Delete every token of this agent (the agent is being deleted: a new agent with the
        same id must not inherit them); their ids."""
        rows = cast(dict[str, str], await self.redis.hgetall(keys.TOKENS))
        gone = {h: json.loads(v)["id"] for h, v in rows.items() if json.loads(v).get("agent") == agent}
        if gone:
            await self.redis.hdel(keys.TOKENS, *gone)
        return list(gone.values())

    async def revoke(self, token_id: str) -> bool:
        """Delete the token whose digest starts with `token_id`; False if none does."""
        for h in cast(list[str], await self.redis.hkeys(keys.TOKENS)):
            if h.startswith(token_id):
                await self.redis.hdel(keys.TOKENS, h)
                return True
        return False


def add_sync(redis_url: str, digest: str, record: dict[str, Any]) -> None:
    client = connect_sync(redis_url)
    try:
        client.hset(keys.TOKENS, digest, json.dumps(record))
    finally:
        client.close()


def all_sync(redis_url: str) -> list[dict[str, Any]]:
    client = connect_sync(redis_url)
    try:
        rows = cast(dict[str, str], client.hgetall(keys.TOKENS))
    finally:
        client.close()
    return sorted((json.loads(v) for v in rows.values()), key=lambda r: str(r["created_at"]))


def revoke_sync(redis_url: str, token_id: str) -> bool:
    """Delete the token whose id (or whole digest) starts with `token_id`; False if none does."""
    client = connect_sync(redis_url)
    try:
        matches = [h for h in cast(list[str], client.hkeys(keys.TOKENS)) if h.startswith(token_id)]
        if len(matches) > 1:
            raise ValueError(f"{token_id!r} matches {len(matches)} tokens: give more of the id")
        return bool(matches) and bool(client.hdel(keys.TOKENS, matches[0]))
    finally:
        client.close()

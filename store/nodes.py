"""Dialing nodes and the partitions they own.

Nodes announce themselves in `keys.NODES` (a zset of last scans; silent for `LEASE_MS`: gone).
Each campaign partition is owned by one node through a lease (`keys.partition_owner`, the node's
name with an expiry, renewed by a compare-and-set script): a dead owner's partitions are taken
over once their leases run out.
"""

from __future__ import annotations

import time
from typing import Final, cast

import redis.asyncio as aioredis

from store import keys
from store.scripts import Scripts

#: A partition's lease lasts this long unless renewed; a node silent this long is gone.
LEASE_MS: Final = 15_000


class Nodes:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._scripts = Scripts(redis)

    async def announce(self, node: str) -> int:
        """This node is alive; answers how many are (at least 1)."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.NODES, {node: now_ms})
            pipe.zremrangebyscore(keys.NODES, "-inf", now_ms - LEASE_MS)
            pipe.zcard(keys.NODES)
            _, _, n = await pipe.execute()
        return max(1, int(n))

    async def leave(self, node: str) -> None:
        await self.redis.zrem(keys.NODES, node)

    async def take(self, cid: str, partition: int, node: str, ms: int = LEASE_MS) -> bool:
        """Take or keep a partition's lease; True if it is the node's."""
        return bool(await self._scripts.run("lease_take", [keys.partition_owner(cid, partition)], [node, ms]))

    async def release(self, cid: str, partition: int, node: str) -> None:
        """Let a partition's lease go if it is still the node's."""
        await self._scripts.run("lease_release", [keys.partition_owner(cid, partition)], [node])

    async def owner(self, cid: str, partition: int) -> str | None:
        return cast(str | None, await self.redis.get(keys.partition_owner(cid, partition)))

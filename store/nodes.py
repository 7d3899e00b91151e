"""Dialing nodes and the partitions they own.

Nodes announce themselves in `keys.NODES` (a zset of last scans; silent for `LEASE_MS`: gone).
Each campaign partition is owned by one node through a lease (`keys.partition_owner`, the node's
name with an expiry, renewed by a compare-and-set script): a dead owner's partitions are taken
over once their leases run out.

Each dialer process is also an *incarnation* (a random id, new at every start: a restarted node
is not the one that died), alive while `keys.incarnation` exists. The dial marks of the calls it
places name it, and `keys.partition_runs` says how it placed them, so that whoever holds the
partition after it died can end them (`pacer/orphans.py`).
"""

from __future__ import annotations

import time
from typing import Final, cast

from store import keys
from store.connection import Client
from store.scripts import Scripts

#: A partition's lease lasts this long unless renewed; a node silent this long is gone.
LEASE_MS: Final = 15_000


class Nodes:
    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self._scripts = Scripts(redis)

    async def announce(self, node: str, ms: int = LEASE_MS) -> int:
        """This node is alive; answers how many are (at least 1): those heard from in the last
        `ms` (the partition lease: a node gone that long has lost its partitions too)."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.NODES, {node: now_ms})
            pipe.zremrangebyscore(keys.NODES, "-inf", now_ms - ms)
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

    async def alive(self, inc: str, node: str, ms: int = LEASE_MS) -> None:
        """Incarnation `inc` (of `node`) is alive for `ms` more."""
        await self.redis.set(keys.incarnation(inc), node, px=ms)

    async def gone(self, inc: str) -> None:
        await self.redis.delete(keys.incarnation(inc))

    async def living(self, incs: list[str]) -> set[str]:
        """Which of these incarnations are alive."""
        if not incs:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for inc in incs:
                pipe.exists(keys.incarnation(inc))
            found = await pipe.execute()
        return {inc for inc, n in zip(incs, found, strict=True) if n}

    async def register_run(self, cid: str, partition: int, inc: str, info: str, *, partitions: int) -> None:
        """How incarnation `inc` places the partition's calls (written before it places one);
        `partitions`: the campaign's (its keys' names depend on it)."""
        await self.redis.hset(keys.partition_runs(cid, partition, partitions=partitions), inc, info)

    async def runs(self, cid: str, partition: int, *, partitions: int) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(keys.partition_runs(cid, partition, partitions=partitions)))

    async def forget_runs(self, cid: str, partition: int, incs: list[str], *, partitions: int) -> None:
        if incs:
            await self.redis.hdel(keys.partition_runs(cid, partition, partitions=partitions), *incs)

    async def owner(self, cid: str, partition: int) -> str | None:
        return cast(str | None, await self.redis.get(keys.partition_owner(cid, partition)))

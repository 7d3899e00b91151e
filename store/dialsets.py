"""Manual and preview calls waiting to be dialled: a partition's dial set.

The API puts a handed call into the partition's dial set (`keys.dial_set`) with the time it is
due (+inf: only when the agent says); the node that owns the partition takes the due ones out
and, in the same script, notes itself as the node placing them (`keys.dialing`), so a call is
taken once. Whoever removes a call from the dial set owns what happens next: a skip or a
disposition before the call is placed removes it too, and a call being placed can no longer be
skipped. A node that dies while it places a call loses the partition's lease (same hash slot):
from then on the call counts as not placed - its agent can dial it again, skip it or set its
disposition - instead of staying stuck on a call nobody places.
"""

from __future__ import annotations

import math
from typing import cast

from store import keys
from store.connection import Client
from store.scripts import Scripts


def _keys(cid: str, partition: int) -> list[str]:
    return [keys.dial_set(cid, partition), keys.dialing(cid, partition), keys.partition_owner(cid, partition)]


class DialSets:
    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self._scripts = Scripts(redis)

    async def offer(self, cid: str, partition: int, call_id: str, due: float | None) -> None:
        """A handed-out call waits to be dialled at `due` (None: when the agent says)."""
        await self.redis.zadd(keys.dial_set(cid, partition), {call_id: math.inf if due is None else due})

    async def dial_now(self, cid: str, partition: int, call_id: str, now: float) -> bool:
        """The agent says call: due now. False while a node is placing it."""
        return bool(await self._scripts.run("dial_now", _keys(cid, partition), [call_id, now]))

    async def withdraw(self, cid: str, partition: int, call_id: str) -> bool:
        """Not to be dialled after all (a skip, a disposition first). False while a node is
        placing it."""
        return bool(await self._scripts.run("dial_withdraw", _keys(cid, partition), [call_id]))

    async def take_due(self, cid: str, partition: int, now: float, node: str, n: int = 50) -> list[str]:
        """Up to `n` calls due by `now`, removed from the set and noted as placed by `node`: the
        caller places them, then calls `placed`."""
        due = await self._scripts.run("dial_take_due", [keys.dial_set(cid, partition), keys.dialing(cid, partition)],
                                      [now, n, node])
        return [str(x) for x in cast(list[str], due)]

    async def placed(self, cid: str, partition: int, call_id: str) -> None:
        """The node is done placing the call (whatever came of it)."""
        await self.redis.hdel(keys.dialing(cid, partition), call_id)

"""Manual and preview calls: the customer an agent was handed is dialled by the partition's
runtime when the agent says so (manual: "Call"; preview: "Call now") or, in preview, once the
campaign's preview time has passed.

The API puts the handed call into the partition's dial set (`dial_key`) with the time it is due
(+inf: only when the agent says); the runtime that owns the partition takes the due ones out
(a script: ZRANGEBYSCORE then ZREM, so a call is taken once) and places them. Whoever removes a
call from the set owns what happens next: a skip or a disposition before the call is placed
removes it too, and a call already taken can no longer be skipped.
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import redis.asyncio as aioredis

from pacer.keys import agent_key, call_key, dial_key, events_key

#: Events kept per campaign stream (as `api.store`).
EVENTS_KEPT = 10_000

# KEYS: dial set. ARGV: now, n. The due call ids, taken out of the set.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""

# KEYS: dial set. ARGV: call id, now. 1 if the call was waiting (it is due now), 0 if not.
_DIAL_NOW = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


async def offer(redis: aioredis.Redis, cid: str, partition: int, call_id: str, due: float | None) -> None:
    """A handed-out call waits to be dialled at `due` (None: when the agent says)."""
    await redis.zadd(dial_key(cid, partition), {call_id: math.inf if due is None else due})


async def dial_now(redis: aioredis.Redis, cid: str, partition: int, call_id: str, now: float) -> bool:
    """The agent says call: due now. False if it is not waiting (already taken or withdrawn)."""
    return bool(await redis.eval(_DIAL_NOW, 1, dial_key(cid, partition), call_id, now))


async def withdraw(redis: aioredis.Redis, cid: str, partition: int, call_id: str) -> bool:
    """Not to be dialled after all (a skip, a disposition first). False if the runtime has
    taken it already."""
    return bool(await redis.zrem(dial_key(cid, partition), call_id))


async def take_due(redis: aioredis.Redis, cid: str, partition: int, now: float, n: int = 50) -> list[str]:
    """Up to `n` calls due by `now`, removed from the set: the caller places them."""
    return [str(x) for x in cast(list[str], await redis.eval(_TAKE_DUE, 1, dial_key(cid, partition), now, n))]


async def end(redis: aioredis.Redis, cid: str, call_id: str, agent: str, event: dict[str, Any]) -> None:
    """The dialer's outcome ends a handed call nobody answered: the agent's open call goes (if
    it is still this one) and the campaign's events say so, as a disposition would."""
    if cast(str | None, await redis.hget(agent_key(agent), "call")) != call_id:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.unlink(call_key(call_id))
        pipe.hdel(agent_key(agent), "call")
        pipe.xadd(events_key(cid), {"type": "disposition", "data": json.dumps(event)}, maxlen=EVENTS_KEPT, approximate=True)
        await pipe.execute()

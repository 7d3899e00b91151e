"""Manual and preview calls: the customer an agent was handed is dialled by the partition's
runtime when the agent says so (manual: "Call"; preview: "Call now") or, in preview, once the
campaign's preview time has passed.

The API puts the handed call into the partition's dial set (`dial_key`) with the time it is due
(+inf: only when the agent says); the runtime that owns the partition takes the due ones out and,
in the same script, notes itself as the node placing them (`dialing_key`), so a call is taken
once. Whoever removes a call from the dial set owns what happens next: a skip or a disposition
before the call is placed removes it too, and a call being placed can no longer be skipped. A
node that dies while it places a call loses the partition's lease (`{c:<id>}:owner:<p>`, same
hash slot): from then on the call counts as not placed - its agent can dial it again, skip it or
set its disposition - instead of staying stuck on a call nobody places.
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import redis.asyncio as aioredis

from pacer.keys import agent_key, call_key, dial_key, dialing_key, events_key, lease_key

#: Events kept per campaign stream (as `api.store`).
EVENTS_KEPT = 10_000


# KEYS: dial set, dialing hash. ARGV: now, n, node. The due call ids, taken out of the set and
# noted as being placed by `node`.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
  for _, id in ipairs(due) do redis.call('HSET', KEYS[2], id, ARGV[3]) end
end
return due
"""

# Is the call being placed by a live node? Then 'live'. A node that lost the partition's lease
# (it died) placed nothing more: its note goes and the call is free again ('free'). Not noted:
# 'none'. KEYS[2]: dialing hash, KEYS[3]: the partition's lease. ARGV[1]: call id.
_PLACING = """
local function placing()
  local node = redis.call('HGET', KEYS[2], ARGV[1])
  if not node then return 'none' end
  if redis.call('GET', KEYS[3]) == node then return 'live' end
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 'free'
end
"""

# KEYS: dial set, dialing hash, owner. ARGV: call id, now. 1 if the call is due now; 0 if it is
# being placed (or was never offered).
_DIAL_NOW = _PLACING + """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
if placing() == 'free' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
return 0
"""

# KEYS: dial set, dialing hash, owner. ARGV: call id. 1 if the call will not be placed (it was
# waiting, or its node died); 0 if a live node is placing it.
_WITHDRAW = _PLACING + """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then return 1 end
if placing() == 'live' then return 0 end
return 1
"""


def _keys(cid: str, partition: int) -> list[str]:
    return [dial_key(cid, partition), dialing_key(cid, partition), lease_key(cid, partition)]


async def offer(redis: aioredis.Redis, cid: str, partition: int, call_id: str, due: float | None) -> None:
    """A handed-out call waits to be dialled at `due` (None: when the agent says)."""
    await redis.zadd(dial_key(cid, partition), {call_id: math.inf if due is None else due})


async def dial_now(redis: aioredis.Redis, cid: str, partition: int, call_id: str, now: float) -> bool:
    """The agent says call: due now. False while a node is placing it."""
    return bool(await redis.eval(_DIAL_NOW, 3, *_keys(cid, partition), call_id, now))


async def withdraw(redis: aioredis.Redis, cid: str, partition: int, call_id: str) -> bool:
    """Not to be dialled after all (a skip, a disposition first). False while a node is placing
    it."""
    return bool(await redis.eval(_WITHDRAW, 3, *_keys(cid, partition), call_id))


async def take_due(redis: aioredis.Redis, cid: str, partition: int, now: float, node: str, n: int = 50) -> list[str]:
    """Up to `n` calls due by `now`, removed from the set and noted as placed by `node`: the
    caller places them, then calls `placed`."""
    due = await redis.eval(_TAKE_DUE, 2, dial_key(cid, partition), dialing_key(cid, partition), now, n, node)
    return [str(x) for x in cast(list[str], due)]


async def placed(redis: aioredis.Redis, cid: str, partition: int, call_id: str) -> None:
    """The node is done placing the call (whatever came of it)."""
    await redis.hdel(dialing_key(cid, partition), call_id)


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

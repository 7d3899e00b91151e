"""What the API keeps in Redis: campaigns and their lifecycle, agents, calls handed to agents,
and each campaign's event stream. Nothing lives only in the process: a restart loses nothing.

Keys (a campaign's share its hash tag `{c:<id>}` with the queue's meta key, so each script
touches one slot and the same code runs on a Redis Cluster):
    dialer:campaigns        zset   id -> creation time (ms)
    {c:<id>}:api            hash   spec (JSON), state, created_at, updated_at, created_by,
                                   approved_by, revision
    {c:<id>}:events         stream the campaign's events (SSE and the pacer read it), ~10,000 kept
    {c:<id>}:present        set    agents joined to the campaign
    {c:<id>}:answers        hash   number -> survey answers (JSON) from dispositions
    {c:<id>}:live           string the running pacer's figures (JSON, expires when it stops)
    dialer:agents           hash   id -> {id, name, sip_uri} (JSON)
    dialer:agent:<id>       hash   campaigns it joined ("c:<id>" -> time), "call" -> call id
    dialer:call:<call_id>   hash   a customer handed to an agent: campaign, number, token, ...

Every state change is one Lua script that checks the current state and changes it, or changes
nothing and says why; the events go into the stream inside the same script.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import redis.asyncio as aioredis

from pacer.keys import AGENTS, agent_key, answers_key, api_key, call_key, events_key, live_key, present_key
from pacer.redis_async import connect

_Value = bytes | bytearray | memoryview | str | int | float
_Mapping = dict[_Value, _Value]  # what redis-py's hset(mapping=) is typed to take

CAMPAIGNS: Final = "dialer:campaigns"
EVENTS_KEPT: Final = 10_000


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# Move a campaign from one of the allowed states to another.
# KEYS: api, events. ARGV: allowed (comma-separated), to, now, actor, who may not act ("" or the
# creator check: "not-creator"), event JSON. Returns {status, state, revision}.
_TRANSITION = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing', '', 0} end
local ok = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == st then ok = true end end
if not ok then return {'conflict', st, 0} end
if ARGV[5] == 'not-creator' and redis.call('HGET', KEYS[1], 'created_by') == ARGV[4] then
  return {'forbidden', st, 0}
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at', ARGV[3])
if ARGV[2] == 'approved' then redis.call('HSET', KEYS[1], 'approved_by', ARGV[4]) end
local rev = redis.call('HINCRBY', KEYS[1], 'revision', 1)
local ev = cjson.decode(ARGV[6])
ev['from'] = st
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'type', 'state', 'data', cjson.encode(ev))
return {'ok', st, rev}
"""

# Replace a campaign's spec if its revision is still the one the new spec was merged from.
# KEYS: api, events. ARGV: expected revision, spec JSON, now, event type, event JSON, kept.
_UPDATE = """
local rev = redis.call('HGET', KEYS[1], 'revision')
if not rev then return {'missing', 0} end
if rev ~= ARGV[1] then return {'moved', tonumber(rev)} end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'updated_at', ARGV[3])
local new = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[4], 'data', ARGV[5])
return {'ok', new}
"""


@dataclass(frozen=True)
class Transition:
    """A lifecycle action: the states it may start from and the state it leads to."""

    action: str
    allowed: tuple[str, ...]
    to: str


TRANSITIONS: Final = {
    t.action: t
    for t in (
        Transition("approve", ("pending_approval",), "approved"),
        Transition("start", ("approved",), "running"),
        Transition("pause", ("running",), "paused"),
        Transition("resume", ("paused",), "running"),
        Transition("stop", ("approved", "running", "paused"), "stopped"),
    )
}


class Missing(LookupError):
    """No such campaign / agent / call."""


class Conflict(RuntimeError):
    """The thing is in a state where this cannot happen; `state` names it."""

    def __init__(self, message: str, state: str | None = None) -> None:
        super().__init__(message)
        self.state = state


class NotAllowed(PermissionError):
    """The caller's role allows the action in general, but not on this object."""


class Store:
    """Async access to the API's records in Redis."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis: aioredis.Redis = connect(url)
        self._transition = self.redis.register_script(_TRANSITION)
        self._update = self.redis.register_script(_UPDATE)

    async def close(self) -> None:
        await self.redis.aclose()

    # -- campaigns ---------------------------------------------------------------------------

    async def create_campaign(self, cid: str, spec: dict[str, Any], actor: str) -> dict[str, Any]:
        now = now_iso()
        record = {
            "spec": json.dumps(spec), "state": "pending_approval", "created_at": now, "updated_at": now,
            "created_by": actor, "revision": "1",
        }
        key = api_key(cid)
        # HSETNX on the spec field claims the id; only its winner writes the rest.
        if not await self.redis.hsetnx(key, "spec", record["spec"]):
            raise Conflict(f"campaign {cid} already exists")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=cast(_Mapping, record))
            pipe.zadd(CAMPAIGNS, {cid: int(time.time() * 1000)})
            pipe.xadd(events_key(cid), {"type": "created", "data": json.dumps({"state": "pending_approval", "by": actor})},
                      maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()
        return await self.campaign(cid)

    async def campaign(self, cid: str) -> dict[str, Any]:
        raw = cast(dict[str, str], await self.redis.hgetall(api_key(cid)))
        if not raw or "state" not in raw:
            raise Missing(f"no campaign {cid!r}")
        return _campaign(cid, raw)

    async def campaigns(self, state: str | None = None) -> list[dict[str, Any]]:
        ids = cast(list[str], await self.redis.zrange(CAMPAIGNS, 0, -1))
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(api_key(cid))
            rows = await pipe.execute()
        out = [_campaign(cid, raw) for cid, raw in zip(ids, rows) if raw and "state" in raw]
        return [c for c in out if state is None or c["state"] == state]

    async def update_spec(self, cid: str, revision: int, spec: dict[str, Any], event: str, data: dict[str, Any]) -> int:
        """Store `spec` if the campaign is still at `revision`; raise `Conflict` if it moved."""
        status, rev = await self._update(
            keys=[api_key(cid), events_key(cid)],
            args=[str(revision), json.dumps(spec), now_iso(), event, json.dumps(data), EVENTS_KEPT],
        )
        if status == "missing":
            raise Missing(f"no campaign {cid!r}")
        if status == "moved":
            raise Conflict(f"campaign {cid} changed meanwhile (revision {rev}); retry")
        return int(rev)

    async def transition(self, cid: str, action: str, actor: str, *, not_creator: bool = False) -> dict[str, Any]:
        t = TRANSITIONS[action]
        status, state, _ = await self._transition(
            keys=[api_key(cid), events_key(cid)],
            args=[",".join(t.allowed), t.to, now_iso(), actor, "not-creator" if not_creator else "",
                  json.dumps({"action": action, "state": t.to, "by": actor}), EVENTS_KEPT],
        )
        if status == "missing":
            raise Missing(f"no campaign {cid!r}")
        if status == "conflict":
            raise Conflict(f"campaign {cid} is {state}: cannot {action} (allowed from {', '.join(t.allowed)})", state)
        if status == "forbidden":
            raise NotAllowed(f"campaign {cid} was created by this token's holder: another supervisor or an admin approves it")
        return await self.campaign(cid)

    async def delete_campaign(self, cid: str) -> None:
        c = await self.campaign(cid)
        if c["state"] in ("running", "paused"):
            raise Conflict(f"campaign {cid} is {c['state']}: stop it before deleting it", c["state"])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(CAMPAIGNS, cid)
            pipe.unlink(api_key(cid), events_key(cid), present_key(cid), answers_key(cid), live_key(cid))
            await pipe.execute()

    async def publish(self, cid: str, kind: str, data: dict[str, Any]) -> str:
        return str(await self.redis.xadd(events_key(cid), {"type": kind, "data": json.dumps(data)},
                                         maxlen=EVENTS_KEPT, approximate=True))

    async def live(self, cid: str) -> dict[str, Any] | None:
        raw = await self.redis.get(live_key(cid))
        return json.loads(raw) if raw else None

    # -- agents -------------------------------------------------------------------------------

    async def create_agent(self, agent: dict[str, Any]) -> None:
        if not await self.redis.hsetnx(AGENTS, agent["id"], json.dumps(agent)):
            raise Conflict(f"agent {agent['id']} already exists")

    async def agent(self, aid: str) -> dict[str, Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(AGENTS, aid)
            pipe.hgetall(agent_key(aid))
            raw, info = await pipe.execute()
        if raw is None:
            raise Missing(f"no agent {aid!r}")
        return _agent(json.loads(raw), cast(dict[str, str], info))

    async def agents(self) -> list[dict[str, Any]]:
        rows = cast(dict[str, str], await self.redis.hgetall(AGENTS))
        ids = sorted(rows)
        async with self.redis.pipeline(transaction=False) as pipe:
            for aid in ids:
                pipe.hgetall(agent_key(aid))
            infos = await pipe.execute()
        return [_agent(json.loads(rows[aid]), info) for aid, info in zip(ids, infos)]

    async def delete_agent(self, aid: str) -> None:
        await self.redis.hdel(AGENTS, aid)
        await self.redis.unlink(agent_key(aid))

    async def join(self, cid: str, aid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(present_key(cid), aid)
            pipe.hset(agent_key(aid), f"c:{cid}", now_iso())
            pipe.xadd(events_key(cid), {"type": "agent", "data": json.dumps({"agent": aid, "joined": True})},
                      maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()

    async def leave(self, cid: str, aid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(present_key(cid), aid)
            pipe.hdel(agent_key(aid), f"c:{cid}")
            pipe.xadd(events_key(cid), {"type": "agent", "data": json.dumps({"agent": aid, "joined": False})},
                      maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()

    async def set_away(self, aid: str, away: bool) -> None:
        """An agent takes a break (no new calls for it; a call in progress goes on) or is back."""
        info = cast(dict[str, str], await self.redis.hgetall(agent_key(aid)))
        async with self.redis.pipeline(transaction=True) as pipe:
            if away:
                pipe.hset(agent_key(aid), "away", now_iso())
            else:
                pipe.hdel(agent_key(aid), "away")
            for k in info:
                if k.startswith("c:"):
                    pipe.xadd(events_key(k[2:]), {"type": "agent", "data": json.dumps({"agent": aid, "away": away})},
                              maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()

    async def present(self, cid: str) -> int:
        return int(await self.redis.scard(present_key(cid)))

    # -- calls handed to agents ---------------------------------------------------------------

    async def begin_call(self, aid: str, call_id: str, record: dict[str, str], event: dict[str, Any]) -> bool:
        """Make `call_id` the agent's current call, unless it already has one (then False)."""
        if not await self.redis.hsetnx(agent_key(aid), "call", call_id):
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(call_key(call_id), mapping=cast(_Mapping, record))
            pipe.xadd(events_key(record["campaign"]), {"type": "call", "data": json.dumps(event)}, maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()
        return True

    async def current_call(self, aid: str) -> str | None:
        return cast(str | None, await self.redis.hget(agent_key(aid), "call"))

    async def call(self, call_id: str) -> dict[str, str]:
        raw = cast(dict[str, str], await self.redis.hgetall(call_key(call_id)))
        if not raw:
            raise Missing(f"no call {call_id!r}")
        return raw

    async def end_call(self, call_id: str, aid: str, cid: str, number: str, answers: dict[str, str], event: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.unlink(call_key(call_id))
            pipe.hdel(agent_key(aid), "call")
            if answers:
                pipe.hset(answers_key(cid), number, json.dumps(answers))
            pipe.xadd(events_key(cid), {"type": "disposition", "data": json.dumps(event)}, maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()

    async def answers(self, cid: str, numbers: Sequence[str]) -> list[dict[str, str] | None]:
        if not numbers:
            return []
        rows = await self.redis.hmget(answers_key(cid), list(numbers))
        return [json.loads(r) if r else None for r in rows]


def _campaign(cid: str, raw: dict[str, str]) -> dict[str, Any]:
    spec = json.loads(raw["spec"])
    return {
        **spec, "id": cid, "state": raw["state"], "created_at": raw["created_at"], "updated_at": raw["updated_at"],
        "created_by": raw["created_by"], "approved_by": raw.get("approved_by"), "revision": int(raw["revision"]),
    }


def _agent(agent: dict[str, Any], info: dict[str, str]) -> dict[str, Any]:
    return {**agent, "campaigns": sorted(k[2:] for k in info if k.startswith("c:")), "call": info.get("call"),
            "away": "away" in info}

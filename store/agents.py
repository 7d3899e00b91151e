"""Agents: the roster, who joined which campaign, breaks, and the one call each has open.

An agent's open call is the field `call` of `keys.agent(id)`, set with HSETNX so an agent never
holds two; the call's record (`keys.call(call_id)`: campaign, number, the claim's token,
partition, agent, ...) is what the agent screen, the disposition and the runtime read. A call is
opened by `open_call` (the runtime reserving an agent for an answered call, or `next` handing a
customer out) and closed by `close_call` (a disposition, a skip, the dialer's outcome of a handed
call nobody answered, a reservation never connected): one place each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, cast

from store import keys
from store.campaigns import add_event, now_iso
from store.connection import Client
from store.errors import Conflict, Missing
from store.steps import Steps, unlink

_Value = bytes | bytearray | memoryview | str | int | float
_Mapping = dict[_Value, _Value]


class AgentState(StrEnum):
    """An agent as the runtime sees it (the pacing engine is told of every change)."""

    READY = "ready"
    #: Reserved for one of our calls, or connected to it.
    TALKING = "talking"
    #: A call of theirs is open (our wrap-up until its disposition, or a call elsewhere).
    WRAP = "wrap"
    AWAY = "away"


class Dial(StrEnum):
    """Where a handed call (manual, preview) stands with the dialer."""

    WAITING = "waiting"
    DIALLING = "dialling"
    CONNECTED = "connected"


@dataclass(frozen=True)
class AgentFlags:
    """What the runtime reads of an agent each tick."""

    call: str | None
    away: bool


#: Agent changes kept in `keys.AGENT_CHANGES`.
CHANGES_KEPT: Final = 10_000


def _changed(pipe: Any, aid: str) -> None:
    """Queue the note that `aid`'s record changed, with the change itself."""
    pipe.xadd(keys.AGENT_CHANGES, {"agent": aid}, maxlen=CHANGES_KEPT, approximate=True)


class Agents:
    """The roster, presence and open calls, on one client."""

    def __init__(self, redis: Client) -> None:
        self.redis = redis

    # -- the roster ------------------------------------------------------------------------------

    async def create(self, agent: dict[str, Any]) -> None:
        if not await self.redis.hsetnx(keys.AGENTS, agent["id"], json.dumps(agent)):
            raise Conflict(f"agent {agent['id']} already exists")

    async def get(self, aid: str) -> dict[str, Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.AGENTS, aid)
            pipe.hgetall(keys.agent(aid))
            raw, info = await pipe.execute()
        if raw is None:
            raise Missing(f"no agent {aid!r}")
        return _agent(json.loads(raw), cast(dict[str, str], info))

    async def all(self) -> list[dict[str, Any]]:
        rows = cast(dict[str, str], await self.redis.hgetall(keys.AGENTS))
        ids = sorted(rows)
        async with self.redis.pipeline(transaction=False) as pipe:
            for aid in ids:
                pipe.hgetall(keys.agent(aid))
            infos = await pipe.execute()
        return [_agent(json.loads(rows[aid]), info) for aid, info in zip(ids, infos)]

    async def delete(self, aid: str) -> None:
        # Steps, in this order on a cluster: the agent's record goes first (an agent on the roster
        # without one is an agent with no campaigns, call or break; a record left behind the
        # roster would be inherited by a new agent of the same id), then its roster entry, then
        # the change note (the screens it wakes find the agent gone).
        steps = Steps(self.redis, atomic=True)
        unlink(steps.step(), keys.agent(aid))
        steps.step().hdel(keys.AGENTS, aid)
        _changed(steps.step(), aid)
        await steps.run()

    async def sip_uris(self, ids: Sequence[str]) -> dict[str, str]:
        """The phones of these agents (those that have one)."""
        if not ids:
            return {}
        rows = await self.redis.hmget(keys.AGENTS, list(ids))
        out = {}
        for a, raw in zip(ids, rows):
            uri = json.loads(raw).get("sip_uri") if raw else None
            if uri:
                out[a] = str(uri)
        return out

    # -- campaigns and breaks ------------------------------------------------------------------------

    # Joining and leaving, in steps on a cluster: the agent's record (its `c:<id>` fields) is
    # what `delete` and the API's leave-all go by, so it always names at least the campaigns whose
    # set holds the agent - it is written before the campaign's set on a join and after it on a
    # leave (a prefix: joined on the screen, no calls yet; or no calls any more, still joined on
    # the screen, and leaving again finishes it). The campaign's set and its event are one step
    # (one slot); the change note comes last, so the screens it wakes read the new state.

    async def join(self, cid: str, aid: str) -> None:
        steps = Steps(self.redis, atomic=True)
        steps.step().hset(keys.agent(aid), f"c:{cid}", now_iso())
        campaign = steps.step()
        campaign.sadd(keys.present(cid), aid)
        add_event(campaign, cid, "agent", {"agent": aid, "joined": True})
        _changed(steps.step(), aid)
        await steps.run()

    async def leave(self, cid: str, aid: str) -> None:
        steps = Steps(self.redis, atomic=True)
        campaign = steps.step()
        campaign.srem(keys.present(cid), aid)
        add_event(campaign, cid, "agent", {"agent": aid, "joined": False})
        steps.step().hdel(keys.agent(aid), f"c:{cid}")
        _changed(steps.step(), aid)
        await steps.run()

    async def set_away(self, aid: str, away: bool) -> None:
        """An agent takes a break (no new calls for it; a call in progress goes on) or is back."""
        info = cast(dict[str, str], await self.redis.hgetall(keys.agent(aid)))
        # Steps on a cluster: the break itself first (what the runtime reads), then the event in
        # each campaign's stream (one slot each) and the change note, which report it.
        steps = Steps(self.redis, atomic=True)
        if away:
            steps.step().hset(keys.agent(aid), "away", now_iso())
        else:
            steps.step().hdel(keys.agent(aid), "away")
        for k in info:
            if k.startswith("c:"):
                add_event(steps.step(), k[2:], "agent", {"agent": aid, "away": away})
        _changed(steps.step(), aid)
        await steps.run()

    async def present(self, cid: str) -> set[str]:
        return {str(a) for a in await self.redis.smembers(keys.present(cid))}

    async def present_count(self, cid: str) -> int:
        return int(await self.redis.scard(keys.present(cid)))

    async def flags(self, ids: Sequence[str]) -> dict[str, AgentFlags]:
        """Each agent's open call and break, in one round trip."""
        if not ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for a in ids:
                pipe.hmget(keys.agent(a), ["call", "away"])
            rows = cast(list[list[str | None]], await pipe.execute())
        return {a: AgentFlags(call=call, away=away is not None) for a, (call, away) in zip(ids, rows)}

    # -- open calls ------------------------------------------------------------------------------------

    async def open_call(self, aid: str, call_id: str, record: dict[str, str], event: dict[str, Any]) -> bool:
        """Make `call_id` the agent's open call, with its record and a `call` event, unless the
        agent already has one (then False and nothing is written)."""
        if not await self.redis.hsetnx(keys.agent(aid), "call", call_id):
            return False
        fields = {"handed_at": str(time.time()), **record, "agent": aid}
        # On a cluster the record is written before the notes (a plain pipeline's commands for
        # different nodes go in parallel): whoever they wake reads the record.
        steps = Steps(self.redis, atomic=False)
        steps.step().hset(keys.call(call_id), mapping=cast(_Mapping, fields))
        notes = steps.step()
        add_event(notes, fields["campaign"], "call", event)
        _changed(notes, aid)
        await steps.run()
        return True

    async def current_call(self, aid: str) -> str | None:
        return cast(str | None, await self.redis.hget(keys.agent(aid), "call"))

    async def call(self, call_id: str) -> dict[str, str]:
        raw = cast(dict[str, str], await self.redis.hgetall(keys.call(call_id)))
        if not raw:
            raise Missing(f"no call {call_id!r}")
        return raw

    async def call_or_none(self, call_id: str) -> dict[str, str] | None:
        raw = cast(dict[str, str], await self.redis.hgetall(keys.call(call_id)))
        return raw or None

    async def set_dial(self, call_id: str, dial: Dial, dial_at: float | None = None) -> None:
        """A handed call's dialling state (and when it is due)."""
        fields: dict[str, str] = {"dial": dial.value}
        if dial_at is not None:
            fields["dial_at"] = str(dial_at)
        await self.redis.hset(keys.call(call_id), mapping=cast(_Mapping, fields))

    async def set_leg(self, call_id: str, leg: str) -> None:
        """The customer of `call_id` is connected to its agent: `leg` is the agent's call's
        dialog (`SavedDialog`), for a node taking over to hang it up if the dialer dies."""
        await self.redis.hset(keys.call(call_id), "leg", leg)

    async def open_records(self, call_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """The records of those of these calls that are still their agent's open call (no
        disposition yet), in two round trips."""
        if not call_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in call_ids:
                pipe.hgetall(keys.call(c))
            rows = cast(list[dict[str, str]], await pipe.execute())
        found = {c: r for c, r in zip(call_ids, rows) if r.get("agent")}
        if not found:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for r in found.values():
                pipe.hget(keys.agent(r["agent"]), "call")
            current = await pipe.execute()
        return {c: r for (c, r), now in zip(found.items(), current) if now == c}

    async def set_dial_at(self, call_id: str, dial_at: float) -> None:
        """Only when a waiting call is due (a runner may be writing its `dial` meanwhile)."""
        await self.redis.hset(keys.call(call_id), "dial_at", str(dial_at))

    async def close_call(self, call_id: str, aid: str | None = None, *, campaign: str | None = None,
                         number: str | None = None, answers: dict[str, str] | None = None,
                         event: dict[str, Any] | None = None, if_open: bool = False) -> bool:
        """Close a call: its record goes, and the agent's `call` field if it names this call;
        with `answers`, the survey answers are kept for the number; with `event`, a
        `disposition` event is written. `aid` None: the agent named in the call's record (a
        reservation whose caller never learnt which agent it got). `if_open`: only if it is
        still the agent's open call (else nothing changes). True if it was the open call."""
        if aid is None:
            aid = cast(str | None, await self.redis.hget(keys.call(call_id), "agent"))
            if aid is None:
                return False
        mine = await self.current_call(aid) == call_id
        if if_open and not mine:
            return False
        # Steps, in this order on a cluster: the answers and the event (the campaign's slot:
        # written again, with the event twice, if the close is tried again - never lost); then the
        # agent's `call` field (the agent is free) and its change note; the call's record last, so
        # that an agent never names a call whose record is gone (that would hold it for ever:
        # `open_call` sets the field only if absent), and a close tried again finds the record.
        steps = Steps(self.redis, atomic=True)
        if campaign is not None and (event is not None or (answers and number is not None)):
            step = steps.step()
            if answers and number is not None:
                step.hset(keys.answers(campaign), number, json.dumps(answers))
            if event is not None:
                add_event(step, campaign, "disposition", event)
        if mine:
            steps.step().hdel(keys.agent(aid), "call")
            _changed(steps.step(), aid)
        unlink(steps.step(), keys.call(call_id))
        await steps.run()
        return mine

    async def newest_change(self) -> str:
        """The id of the newest agent change ("0-0": none), to read what comes after it."""
        newest = cast(list[tuple[str, Any]], await self.redis.xrevrange(keys.AGENT_CHANGES, count=1))
        return newest[0][0] if newest else "0-0"

    async def changes_after(self, last: str, *, block_ms: int, count: int) -> list[tuple[str, str]]:
        """(change id, agent) after `last`, waiting up to `block_ms` for one (this holds the
        connection: the reader has a client of its own)."""
        got = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]],
                   await self.redis.xread({keys.AGENT_CHANGES: last}, block=block_ms, count=count))
        return [(entry_id, fields.get("agent", "")) for _, es in got for entry_id, fields in es]

    async def answers(self, cid: str, numbers: Sequence[str]) -> list[dict[str, str] | None]:
        if not numbers:
            return []
        rows = await self.redis.hmget(keys.answers(cid), list(numbers))
        return [json.loads(r) if r else None for r in rows]


def _agent(agent: dict[str, Any], info: dict[str, str]) -> dict[str, Any]:
    return {**agent, "campaigns": sorted(k[2:] for k in info if k.startswith("c:")), "call": info.get("call"),
            "away": "away" in info}

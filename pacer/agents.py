"""The agents of one campaign as the runtime sees them: who is ready, talking or wrapping up.

Agents join and leave through the API (`{c:<id>}:present`); their SIP URIs are in the roster
(`dialer:agents`). An agent's open call is `dialer:agent:<id>` field `call`, the same record
`POST /v1/agents/{id}/next` and `POST /v1/calls/{id}/disposition` use: the runtime opens it when
it reserves the agent for an answered call (HSETNX, so an agent is never given two calls), and
the agent's disposition closes it - that ends the wrap-up and completes the contact in the queue
with the claim's token. The pacing engine is told of every state change.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast

import dialer_core
import redis.asyncio as aioredis

from pacer.keys import AGENTS, agent_key, call_key, events_key, present_key
from sip_gateway.agent import Agent

EVENTS_KEPT = 10_000


class AgentPool:
    def __init__(self, redis: aioredis.Redis, cid: str, engine: dialer_core.PacingEngine) -> None:
        self.redis = redis
        self.cid = cid
        self.engine = engine
        self.loop = asyncio.get_running_loop()
        #: agent -> "ready", "talking" (reserved for a call or connected), "wrap" or "away".
        self.states: dict[str, str] = {}
        self.uris: dict[str, str] = {}
        #: agent -> when it last became ready (the longest idle is reserved first).
        self.ready_since: dict[str, float] = {}

    def _set(self, agent: str, state: dialer_core.AgentStateName) -> None:
        if self.states.get(agent) == state:
            return
        self.states[agent] = state
        if state == "ready":
            self.ready_since[agent] = self.loop.time()
        self.engine.agent_state(agent, state, self.loop.time())

    async def sync(self) -> None:
        """Follow joins and leaves, and wrap-ups ended by a disposition."""
        present = {str(a) for a in await self.redis.smembers(present_key(self.cid))}
        for gone in set(self.states) - present:
            if self.states[gone] != "talking":
                del self.states[gone]
                self.engine.agent_state(gone, "offline", self.loop.time())
        new = sorted(present - set(self.states))
        if new:
            rows = await self.redis.hmget(AGENTS, new)
            for a, raw in zip(new, rows):
                uri = json.loads(raw).get("sip_uri") if raw else None
                if uri:
                    self.uris[a] = str(uri)
                    self._set(a, "wrap")  # until the next lines see its open call and break
        # Everyone not on one of our calls: away (a break), wrap (a call still open: our wrap-up
        # until its disposition, or a call elsewhere) or ready.
        idle = [a for a, s in self.states.items() if s != "talking"]
        if idle:
            async with self.redis.pipeline(transaction=False) as pipe:
                for a in idle:
                    pipe.hmget(agent_key(a), ["call", "away"])
                flags = cast(list[list[str | None]], await pipe.execute())
            for a, (call, away) in zip(idle, flags):
                self._set(a, "away" if away else "wrap" if call else "ready")

    def ready_agents(self) -> list[str]:
        return [a for a, s in self.states.items() if s == "ready"]

    async def reserve(self, call_id: str, record: dict[str, str], only: str | None = None) -> Agent | None:
        """The longest-idle ready agent (or `only` that one, if ready), now holding `call_id` as
        its open call (None: nobody)."""
        ready = [a for a, s in self.states.items() if s == "ready" and (only is None or a == only)]
        for a in sorted(ready, key=lambda a: self.ready_since.get(a, 0.0)):
            if not await self.redis.hsetnx(agent_key(a), "call", call_id):
                self._set(a, "wrap")  # busy elsewhere (a manual call, another campaign)
                continue
            self._set(a, "talking")
            async with self.redis.pipeline(transaction=False) as pipe:
                fields = {**record, "agent": a, "handed_at": str(time.time())}
                pipe.hset(call_key(call_id), mapping=cast(dict[bytes | bytearray | memoryview | str | int | float,
                                                                bytes | bytearray | memoryview | str | int | float], fields))
                pipe.xadd(events_key(self.cid), {"type": "call", "data": json.dumps({"agent": a, "call_id": call_id})},
                          maxlen=EVENTS_KEPT, approximate=True)
                await pipe.execute()
            return Agent(a, self.uris[a])
        return None

    async def unreserve(self, agent: str, call_id: str) -> None:
        """The reserved agent was never connected (the customer left, the agent's phone did not
        answer): its open call goes, and it is ready again."""
        if cast(str | None, await self.redis.hget(agent_key(agent), "call")) == call_id:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(agent_key(agent), "call")
                pipe.unlink(call_key(call_id))
                await pipe.execute()
        self._set(agent, "ready")

    def talking(self, agent: str) -> None:
        """On a call the agent was handed (manual, preview): the dialer is placing it."""
        self._set(agent, "talking")

    def wrap(self, agent: str) -> None:
        """The customer's call ended: the agent wraps up until its disposition."""
        self._set(agent, "wrap")

    async def disposed(self, agent: str, call_id: str) -> bool:
        """Has the agent set the disposition of `call_id` (its open call is gone)?"""
        return cast(str | None, await self.redis.hget(agent_key(agent), "call")) != call_id

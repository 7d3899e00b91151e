"""The agents of one campaign as the runtime sees them: who is ready, talking or wrapping up.

Agents join and leave through the API (`store.agents`); an agent's open call is the one record
`next`, dispositions and the runtime share: the runtime opens it when it reserves the agent for
an answered call (`open_call`, so an agent is never given two calls), and the agent's
disposition closes it - that ends the wrap-up and completes the contact. The pacing engine is
told of every state change.

Reservations are remembered by call id before anything is written, so a reservation cut short
(the connect limit cancels the wait for an agent while the store is being written) is still
released when the call ends: `release(call_id)` frees whichever agent holds that call.
"""

from __future__ import annotations

import asyncio

import dialer_core

from sip_gateway.agent import Agent
from store.agents import AgentState, Agents


class AgentPool:
    def __init__(self, agents: Agents, cid: str, engine: dialer_core.PacingEngine) -> None:
        self.agents = agents
        self.cid = cid
        self.engine = engine
        self.loop = asyncio.get_running_loop()
        self.states: dict[str, AgentState] = {}
        self.uris: dict[str, str] = {}
        #: agent -> when it last became ready (the longest idle is reserved first).
        self.ready_since: dict[str, float] = {}
        #: call id -> the agent being reserved or reserved for it.
        self.reserved: dict[str, str] = {}
        #: The campaign's `agents` list (None: any agent who joined takes part).
        self.allowed: set[str] | None = None

    def _set(self, agent: str, state: AgentState) -> None:
        if self.states.get(agent) == state:
            return
        self.states[agent] = state
        if state is AgentState.READY:
            self.ready_since[agent] = self.loop.time()
        self.engine.agent_state(agent, state.value, self.loop.time())

    async def sync(self) -> None:
        """Follow joins and leaves, and wrap-ups ended by a disposition."""
        present = await self.agents.present(self.cid)
        if self.allowed is not None:
            present &= self.allowed  # taken off the campaign's list: as if it had left
        for gone in set(self.states) - present:
            if self.states[gone] is not AgentState.TALKING:
                del self.states[gone]
                self.engine.agent_state(gone, "offline", self.loop.time())
        new = sorted(present - set(self.states))
        for a, uri in (await self.agents.sip_uris(new)).items():
            self.uris[a] = uri
            self._set(a, AgentState.WRAP)  # until the next lines see its open call and break
        # Everyone not on one of our calls: away (a break), wrap (a call still open: our wrap-up
        # until its disposition, or a call elsewhere) or ready.
        idle = [a for a, s in self.states.items() if s is not AgentState.TALKING]
        for a, f in (await self.agents.flags(idle)).items():
            self._set(a, AgentState.AWAY if f.away else AgentState.WRAP if f.call else AgentState.READY)

    def ready_agents(self) -> list[str]:
        return [a for a, s in self.states.items() if s is AgentState.READY]

    async def reserve(self, call_id: str, record: dict[str, str], only: str | None = None) -> Agent | None:
        """The longest-idle ready agent (or `only` that one, if ready), now holding `call_id` as
        its open call (None: nobody)."""
        ready = [a for a, s in self.states.items() if s is AgentState.READY and (only is None or a == only)]
        for a in sorted(ready, key=lambda a: self.ready_since.get(a, 0.0)):
            # Noted before the store is written: if this is cancelled halfway, `release` still
            # knows whom to free.
            self.reserved[call_id] = a
            self._set(a, AgentState.TALKING)
            if not await self.agents.open_call(a, call_id, record, {"agent": a, "call_id": call_id}):
                del self.reserved[call_id]
                self._set(a, AgentState.WRAP)  # busy elsewhere (a manual call, another campaign)
                continue
            return Agent(a, self.uris[a])
        return None

    async def release(self, call_id: str) -> None:
        """The call's reserved agent was never connected (the customer left, the agent's phone
        did not answer, the reservation was cut short): its open call goes, and it is ready."""
        agent = self.reserved.pop(call_id, None)
        await self.agents.close_call(call_id, agent, if_open=True)
        if agent is not None and self.states.get(agent) is AgentState.TALKING:
            self._set(agent, AgentState.READY)

    def connected(self, call_id: str) -> None:
        """The call's agent is connected: its reservation is now its call (closed by its
        disposition)."""
        self.reserved.pop(call_id, None)

    def talking(self, agent: str) -> None:
        """On a call the agent was handed (manual, preview): the dialer is placing it."""
        self._set(agent, AgentState.TALKING)

    def wrap(self, agent: str) -> None:
        """The customer's call ended: the agent wraps up until its disposition."""
        self._set(agent, AgentState.WRAP)

    async def disposed(self, agent: str, call_id: str) -> bool:
        """Has the agent set the disposition of `call_id` (its open call is gone)?"""
        return await self.agents.current_call(agent) != call_id

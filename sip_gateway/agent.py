"""Agent connect: answered calls of agent campaigns put through to an agent's SIP endpoint.

The gateway is a back-to-back user agent (B2BUA): when the customer answers, it asks the pacer
for a reserved agent, places a second call to that agent's SIP URI (the agent's phone answers
at once: auto-answer, as contact-centre phones are set up), and bridges the two calls' media in
the media engine, so the customer hears the agent as soon as the agent's 200 OK arrives. If no
agent is reserved, or the agent's phone has not answered within the connect limit (2 s by
default), the call is abandoned: the campaign's short identification message is played and the
customer is hung up. When either side hangs up, the other is hung up too.

Why a B2BUA with media through our engine rather than a re-INVITE that sends media end to end:
the customer's leg never changes (no re-INVITE for the carrier to refuse or answer slowly, no
SDP from an agent's phone behind NAT handed to the carrier), the abandon message and any later
announcement come from the same media path, and the connect time is one INVITE/200 on the
agents' LAN. The cost is relaying the audio: two packets per 20 ms per connected call, which the
engine does on its thread (`MediaEngine.bridge`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sip_gateway import sdp
from sip_gateway.call import CallIds, OutboundCall, TrunkConfig
from sip_gateway.media import MediaHub
from sip_gateway.outcomes import CallResult, Outcome
from sip_gateway.uac import CallHooks, Uac

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Agent:
    id: str
    #: The agent's phone, e.g. "sip:agent1@10.0.0.20:5060".
    sip_uri: str

    def address(self) -> tuple[str, tuple[str, int]]:
        """(user, (host, port)) of the URI."""
        uri = self.sip_uri.strip("<>")
        if not uri.startswith("sip:") or "@" not in uri:
            raise ValueError(f"agent {self.id}: {self.sip_uri!r} is not a sip:user@host[:port] URI")
        user, _, hostport = uri[4:].partition("@")
        hostport = hostport.split(";", 1)[0]
        if hostport.startswith("["):  # [IPv6]:port
            host, _, rest = hostport[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = hostport.partition(":")
        if not user or not host or (port and not port.isdigit()):
            raise ValueError(f"agent {self.id}: {self.sip_uri!r} is not a sip:user@host[:port] URI")
        return user, (host, int(port or 5060))


@dataclass
class AgentOutcome:
    customer: CallResult
    agent: Agent | None = None
    agent_call: CallResult | None = None
    #: Monotonic time the customer was bridged to the agent (None: never).
    connected_at: float | None = None
    #: Answered, but no agent within the connect limit: the identification message was played.
    abandoned: bool = False
    #: "customer", "agent", "abandon", "no_media", "max_duration", or "" (never answered).
    ended_by: str = ""


def agent_leg_config(trunk: TrunkConfig, target: tuple[str, int], caller: str) -> TrunkConfig:
    """How the call to an agent's phone is placed: from the trunk's UAC, to the phone, showing
    the customer's number - and without the trunk's Digest credentials, which a phone (or any
    `sip_uri` a supervisor enters) could otherwise get hashed by answering 407, and crack."""
    return dataclasses.replace(trunk, trunk=target, domain=target[0], caller_id=caller, ring_timeout_s=15.0,
                               username=None, password=None)


#: Reserve a ready agent for an answered call (None: nobody is free).
Reserve = Callable[[], Awaitable[Agent | None]]
#: The customer is bridged to this agent, whose phone answered this call (the agent's leg).
Connected = Callable[[Agent, OutboundCall], None]


class _Connect:
    def __init__(self, dialer: AgentDialer, reserve: Reserve, on_connected: Connected | None,
                 on_abandoned: Callable[[], None] | None, on_answered: Callable[[], None] | None) -> None:
        self.d = dialer
        self.reserve = reserve
        self.on_connected, self.on_abandoned, self.on_answered = on_connected, on_abandoned, on_answered
        self.loop = asyncio.get_running_loop()
        self.customer_media = 0
        self.agent_media: int | None = None
        self.customer: OutboundCall | None = None
        self.agent_call: OutboundCall | None = None
        #: The agent's call from the moment it is placed (to CANCEL it while it rings).
        self.agent_placed: OutboundCall | None = None
        self.agent_answered = asyncio.Event()
        self.agent_task: asyncio.Task[CallResult] | None = None
        self.agent: Agent | None = None
        self.connected_at: float | None = None
        self.abandoned = False
        self.ended_by = ""
        self.work: asyncio.Task[None] | None = None
        self.guard: asyncio.TimerHandle | None = None

    # --- customer leg ----------------------------------------------------------------------

    def answered(self, call: OutboundCall) -> None:
        self.customer = call
        if self.on_answered is not None:
            self.on_answered()
        self.guard = self.loop.call_later(self.d.max_call_s, self._end_both, "max_duration")
        m = sdp.answer_media(call.answer_sdp)
        if m is None:
            self._end_both("no_media")
            return
        self.d.hub.engine.connect(self.customer_media, m.host, m.port, m.payload_type, m.dtmf_payload_type)
        self.work = self.loop.create_task(self._connect())

    def media_event(self, kind: str, detail: str) -> None:
        if kind == "played" and self.abandoned:
            self._hangup_customer("abandon")
        elif kind == "inactive":
            self._end_both("inactivity")

    async def _connect(self) -> None:
        deadline = self.loop.time() + self.d.connect_limit_s
        try:
            agent = await asyncio.wait_for(self.reserve(), self.d.connect_limit_s)
        except TimeoutError:
            agent = None
        if agent is not None and self.customer is not None and not self.ended_by:
            self.agent = agent
            try:
                user, target = agent.address()
            except ValueError as e:
                log.error("%s", e)
            else:
                self.agent_media, port = self.d.hub.open(_AgentLeg(self))
                cfg = agent_leg_config(self.d.uac.cfg, target, self.customer.result.number)
                self.agent_task = self.loop.create_task(self.d.uac.call(
                    user, media=(self.d.hub.engine.bind, port), cfg=cfg,
                    hooks=CallHooks(answered=self._agent_answered, placed=self._agent_placed), limited=False))
                self.agent_task.add_done_callback(self._agent_ended)
                try:
                    await asyncio.wait_for(self.agent_answered.wait(), max(0.0, deadline - self.loop.time()))
                except TimeoutError:
                    pass
        if self.ended_by:
            return
        if self.agent_answered.is_set() and self.agent_call is not None and self.agent_media is not None:
            m = sdp.answer_media(self.agent_call.answer_sdp)
            if m is not None:
                self.d.hub.engine.connect(self.agent_media, m.host, m.port, m.payload_type, m.dtmf_payload_type)
                self.d.hub.engine.bridge(self.customer_media, self.agent_media)
                self.connected_at = self.loop.time()
                if self.on_connected is not None and self.agent is not None:
                    self.on_connected(self.agent, self.agent_call)
                return
        # Nobody within the connect limit: the identification message, then hang up.
        self._hangup_agent()
        self.abandoned = True
        if self.on_abandoned is not None:
            self.on_abandoned()
        if self.d.abandon_prompt and self.d.hub.engine.has_prompt(self.d.abandon_prompt):
            self.d.hub.engine.play(self.customer_media, [self.d.abandon_prompt])
        else:
            self._hangup_customer("abandon")

    # --- agent leg -------------------------------------------------------------------------

    def _agent_placed(self, call: OutboundCall) -> None:
        self.agent_placed = call

    def _agent_answered(self, call: OutboundCall) -> None:
        self.agent_call = call
        self.agent_answered.set()

    def _agent_ended(self, task: asyncio.Task[CallResult]) -> None:
        if self.connected_at is not None and not self.ended_by:
            self._hangup_customer("agent")

    # --- ending ----------------------------------------------------------------------------

    def _hangup_customer(self, why: str) -> None:
        if not self.ended_by:
            self.ended_by = why
        if self.customer is not None:
            self.d.uac.hangup(self.customer.call_id)

    def _hangup_agent(self) -> None:
        # BYE once answered; CANCEL while it rings (once a provisional response came).
        if self.agent_placed is not None:
            self.d.uac.hangup(self.agent_placed.call_id)

    def _end_both(self, why: str) -> None:
        self._hangup_customer(why)
        self._hangup_agent()


class _AgentLeg:
    def __init__(self, c: _Connect) -> None:
        self.c = c

    def media_event(self, kind: str, detail: str) -> None:
        if kind == "inactive":
            self.c._end_both("inactivity")


class AgentDialer:
    """Places customer calls and connects the answered ones to an agent."""

    def __init__(self, uac: Uac, hub: MediaHub, *, abandon_prompt: str | None = None, connect_limit_s: float = 2.0,
                 max_call_s: float = 3600.0) -> None:
        if abandon_prompt is not None and not hub.engine.has_prompt(abandon_prompt):
            raise ValueError(f"abandon prompt {abandon_prompt!r} is not loaded into the media engine")
        self.uac, self.hub = uac, hub
        self.abandon_prompt = abandon_prompt
        self.connect_limit_s = connect_limit_s
        self.max_call_s = max_call_s

    async def call(self, number: str, reserve: Reserve, *, cfg: TrunkConfig | None = None,
                   on_answered: Callable[[], None] | None = None, on_connected: Connected | None = None,
                   on_abandoned: Callable[[], None] | None = None,
                   admit: Callable[[], bool] | None = None, ids: CallIds | None = None) -> AgentOutcome:
        """Dial `number`; once answered, `reserve()` an agent and connect them. Returns when both
        legs have ended. `admit` is asked right before the INVITE leaves (`NotPlaced`); `ids`:
        the customer call's derived ids (`CallIds`), random by default."""
        c = _Connect(self, reserve, on_connected, on_abandoned, on_answered)
        c.customer_media, port = self.hub.open(c)
        try:
            result = await self.uac.call(number, media=(self.hub.engine.bind, port), cfg=cfg,
                                         hooks=CallHooks(answered=c.answered), admit=admit, ids=ids)
            if not c.ended_by and result.outcome in (Outcome.ANSWERED, Outcome.ANSWERED_THEN_DROPPED):
                c.ended_by = "customer"
            c._hangup_agent()
            if c.work is not None:
                await asyncio.gather(c.work, return_exceptions=True)
            agent_result = await c.agent_task if c.agent_task is not None else None
        finally:
            if c.guard is not None:
                c.guard.cancel()
            self.hub.close(c.customer_media)
            if c.agent_media is not None:
                self.hub.close(c.agent_media)
        return AgentOutcome(customer=result, agent=c.agent, agent_call=agent_result, connected_at=c.connected_at,
                            abandoned=c.abandoned, ended_by=c.ended_by)

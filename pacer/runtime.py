"""The campaign runtime: dials running campaigns through the SIP gateway.

`Dialer` runs in `dialer serve` when a trunk is configured. Every second it looks at the
campaigns that are running or paused and takes the lease of each free partition (a Redis key
with a 15 s expiry, renewed every 5 s by its owner): several `dialer serve` processes on one Redis
share the work, and a partition whose owner died is taken over once its lease expires. Contacts
the dead owner had claimed come back by themselves when their claim leases run out.

`PartitionRunner` dials one partition. Every 100 ms, while the campaign is running, inside its
start/end time and inside a calling window in its time zone, it asks the pacing engine how many
calls to place, claims that many contacts, and places each call through `IvrRunner` (agentless
campaigns). When a call ends its outcome goes to the queue (retry or final), to the pacing
engine, and to the CDR stream; a subscriber who pressed 1 gets the campaign's SMS (at most once).
Pause and stop place no new calls; calls in progress finish. A running campaign whose list is
exhausted (nothing ready, waiting or claimed, no call in progress) or whose end time passed is
marked `completed`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dialer_core
import redis.asyncio as aioredis

from pacer import cdr, handout, sms
from pacer.agents import AgentPool
from pacer.campaign import CampaignFollower, CampaignView, apply_pacing, live_figures, write_live
from pacer.keys import AGENTS, api_key, call_key, events_key, lease_key
from pacer.queue_client import QueueClient
from pacer.redis_async import connect
from pacer.windows import CallingWindows
from sip_gateway import prompts
from sip_gateway.call import TrunkConfig
from sip_gateway.errors import NotPlaced
from sip_gateway.ivr.runner import IvrOutcome, IvrRunner
from sip_gateway.agent import Agent, AgentDialer, AgentOutcome
from sip_gateway.ivr.script import Prompt, Script
from sip_gateway.media import MediaHub
from sip_gateway.outcomes import CallResult, Outcome
from sip_gateway.rate import RateLimit
from sip_gateway.uac import Uac

log = logging.getLogger("dialer.runtime")

CAMPAIGNS = "dialer:campaigns"
#: Modes whose answered calls go to agents (manual and preview hand customers out with `next`).
AGENT_MODES = ("predictive", "progressive")
#: Modes whose customers are handed to agents first, then dialled (`pacer.handout`).
HANDS_OUT = ("manual", "preview")
#: zset: the dialing nodes alive (node -> last scan, ms); partitions are shared out among them.
NODES = "dialer:nodes"
TICK_S = 0.1
LEASE_MS = 15_000
RENEW_S = 5.0
SCAN_S = 1.0
LIVE_EVERY_S = 1.0
#: Claim leases are renewed this often while their calls go on (`GatewaySettings.claim_lease_s`).
HEARTBEAT_S = 2.0


# Take or keep a partition's lease. KEYS: lease. ARGV: owner, ms. 1 if ours.
_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Let a lease go if it is still ours. KEYS: lease. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The runtime's own lifecycle move: running or paused -> completed, with its event (the same
# shape as the API's transitions). KEYS: api, events. ARGV: now, event JSON, kept.
_COMPLETE = """
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' and st ~= 'paused' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'completed', 'updated_at', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'revision', 1)
local ev = cjson.decode(ARGV[2])
ev['from'] = st
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', 'state', 'data', cjson.encode(ev))
return 1
"""


@dataclass(frozen=True)
class NamedTrunk:
    """A trunk a campaign can name (`trunk` in its settings) instead of the node's own."""

    name: str
    address: tuple[str, int]
    transport: str = "UDP"
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class GatewaySettings:
    """Where calls go and how this node places them."""

    trunk: tuple[str, int]
    transport: str = "UDP"
    sip_bind: tuple[str, int] = ("127.0.0.1", 0)
    rtp_bind: str = "127.0.0.1"
    rtp_ports: tuple[int, int] | None = None
    username: str | None = None
    password: str | None = None
    #: TLS to the trunk: the CA file that verifies its certificate, and the name it must carry.
    tls_ca: str | None = None
    tls_server_name: str | None = None
    #: This node's ceiling over all campaigns (each campaign's pacing caps apply too).
    cps: float = 100.0
    channels: int = 2000
    #: Hang up an IVR call that has sent no RTP for this long.
    inactivity_s: float = 30.0
    #: Hang up an IVR call that lasts longer than this.
    max_call_s: float = 300.0
    prompt_cache: Path = Path(".dialer/prompts")
    #: A claim's lease past the ring timeout, renewed while its calls go on: how soon a dead
    #: node's contacts are dialled again by another.
    claim_lease_s: float = 45.0
    #: More trunks, by name; each with its own SIP transport and its own cps and channel caps
    #: (`cps`, `channels`).
    named: tuple[NamedTrunk, ...] = ()


class Gateway:
    """This node's SIP UAC and media engine, shared by every campaign it dials."""

    def __init__(self, settings: GatewaySettings, uac: Uac, hub: MediaHub, named: dict[str, Uac] | None = None) -> None:
        self.settings = settings
        self.uac = uac
        #: The named trunks' UACs.
        self.named = named or {}
        self.hub = hub
        self.scripts: dict[str, Script] = {}
        self.abandon_texts: dict[str, tuple[str, str]] = {}

    @classmethod
    async def open(cls, s: GatewaySettings) -> Gateway:
        engine = dialer_core.MediaEngine(bind=s.rtp_bind, inactivity_s=s.inactivity_s, ports=s.rtp_ports)
        hub = MediaHub(engine)
        cfg = TrunkConfig(trunk=s.trunk, local=s.sip_bind, transport=s.transport, username=s.username,
                          password=s.password, tls_ca=s.tls_ca, tls_server_name=s.tls_server_name)
        uac = await Uac.open(cfg, RateLimit(cps=s.cps, channels=s.channels))
        named: dict[str, Uac] = {}
        try:
            for t in s.named:
                named[t.name] = await Uac.open(
                    dataclasses.replace(cfg, trunk=t.address, transport=t.transport, username=t.username, password=t.password),
                    RateLimit(cps=s.cps, channels=s.channels))
        except BaseException:
            for u in (uac, *named.values()):
                u.close()
            hub.shutdown()
            raise
        return cls(s, uac, hub, named)

    def uac_for(self, trunk: str | None) -> Uac | None:
        """The UAC of a campaign's trunk: the node's own when it names none (None: this node
        has no trunk of that name)."""
        return self.uac if not trunk else self.named.get(trunk)

    async def script(self, name: str) -> Script:
        """A shipped script, its prompts rendered (once) and registered with the media engine."""
        if name not in self.scripts:
            script = Script.load(name)
            await prompts.load(script, self.hub.engine, self.settings.prompt_cache)
            self.scripts[name] = script
        return self.scripts[name]

    async def abandon_prompt(self, cid: str, text: str, lang: str) -> str:
        """A campaign's identification message (agent modes), rendered and registered."""
        name = f"abandon/{cid}"
        key = (text, lang)
        if self.abandon_texts.get(name) != key:
            pcm = await prompts.render(Prompt(text=text, lang=lang), Path("."), self.settings.prompt_cache)
            self.hub.engine.add_prompt(name, pcm)
            self.abandon_texts[name] = key
        return name

    def hangup_all(self) -> int:
        """End every call of every trunk now (their outcomes are recorded as they end)."""
        return sum(u.hangup_all() for u in (self.uac, *self.named.values()))

    def close(self) -> None:
        for u in (self.uac, *self.named.values()):
            u.close()
        self.hub.shutdown()


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def dial_string(number: str) -> str:
    """What goes in the Request-URI: the E.164 number without its '+'."""
    return number.lstrip("+")


def sms_text(template: str, number: str, attrs: dict[str, str]) -> str:
    """The campaign's SMS template with `{name}` and other contact attributes filled in (an
    attribute the contact lacks is left as written)."""
    values = {**attrs, "number": number}
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


@dataclass
class Counts:
    dialled: int = 0
    answered: int = 0
    agreed: int = 0
    sms_requested: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class PartitionRunner:
    """Dials one partition of one campaign while this node holds its lease."""

    def __init__(self, redis_url: str, redis: aioredis.Redis, gateway: Gateway, cid: str, partition: int,
                 node: str = "") -> None:
        self.redis_url = redis_url
        #: This node's name, as in the partition's lease.
        self.node = node
        self.redis = redis
        self.gateway = gateway
        self.cid = cid
        self.partition = partition
        self.view: CampaignView | None = None
        self.deleted = False
        #: The loop has ended (node stopping, campaign stopped, partition let go): no new INVITE leaves.
        self.stopping = False
        self.engine = dialer_core.PacingEngine(mode="ivr", max_channels=1)
        self.queue: dialer_core.CallQueue | None = None
        self.client: QueueClient | None = None
        self.in_flight: set[asyncio.Task[None]] = set()
        #: Claim batch -> its calls in progress (their leases are renewed).
        self.batches: dict[int, int] = {}
        self.last_heartbeat = 0.0
        self.pool: AgentPool | None = None
        self.agents: AgentDialer | None = None
        self.counts = Counts()
        self.loop = asyncio.get_running_loop()
        self.decisions = 0
        self.placed_times: list[float] = []
        self.cfg: TrunkConfig | None = None
        #: The campaign's calling windows, parsed once per change of its settings.
        self.windows: CallingWindows | None = None
        #: The UAC of the campaign's trunk (None: this node has no trunk of that name).
        self.uac: Uac | None = None
        self.trunk_name: str | None = None

    # --- following the campaign ------------------------------------------------------------

    def on_change(self, view: CampaignView | None) -> None:
        if view is None:
            self.deleted = True
            return
        spec = view.spec
        try:
            apply_pacing(self.engine, view)
        except ValueError as e:
            log.error("campaign %s: pacing settings refused by the engine: %s", self.cid, e)
        if self.queue is None:
            self.queue = dialer_core.CallQueue(self.redis_url, self.cid, max_attempts=int(spec["max_attempts"]),
                                               retry_delay_s=float(spec["retry_delay_s"]),
                                               retry_on=list(spec["retry_on"]))
            self.client = QueueClient(self.queue)
        else:
            self.queue.configure(max_attempts=int(spec["max_attempts"]), retry_delay_s=float(spec["retry_delay_s"]),
                                 retry_on=list(spec["retry_on"]))
        self.windows = CallingWindows.parse(spec["timezone"], spec["windows"])
        trunk = spec.get("trunk") or None
        self.uac = self.gateway.uac_for(trunk)
        if trunk != self.trunk_name:
            self.trunk_name = trunk
            self.agents = None  # its dialer places calls through the trunk's UAC
        if self.uac is None:
            # Moved to a trunk this node does not have: let the partition go (the calls in
            # progress end first); a node that has it takes it.
            log.warning("campaign %s/%d: trunk %r is not configured here: partition let go", self.cid, self.partition, trunk)
            self.deleted = True
        else:
            self.cfg = dataclasses.replace(self.uac.cfg, caller_id=str(spec["caller_id"]), ring_timeout_s=float(spec["ring_timeout_s"]))
        self.view = view

    def dialling_allowed(self, now: datetime) -> bool:
        v = self.view
        if v is None or v.state != "running" or self.uac is None or self.stopping:
            return False
        start, end = _when(v.spec.get("start_at")), _when(v.spec.get("end_at"))
        if (start and now < start) or (end and now >= end):
            return False
        return self.windows is not None and self.windows.is_open(now)

    # --- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set, the campaign leaves running/paused, or it is deleted; then waits
        for the calls in progress."""
        follower = CampaignFollower(self.redis_url, self.cid, self.on_change)
        follow_stop = asyncio.Event()
        following = asyncio.create_task(follower.run(follow_stop))
        last_live = 0.0
        try:
            while not stop.is_set() and not self.deleted:
                if following.done():
                    following.result()  # raises what stopped it
                    break
                v = self.view
                if v is not None and v.state not in ("running", "paused"):
                    break
                now = self.loop.time()
                if v is not None and v.mode in AGENT_MODES + HANDS_OUT and self.pool is None:
                    self.pool = AgentPool(self.redis, self.cid, self.engine)
                if self.pool is not None:
                    await self.pool.sync()
                if v is not None and self.dialling_allowed(datetime.now(UTC)):
                    if v.mode in HANDS_OUT:
                        await self._place_handed()
                    else:
                        await self._place(self.loop.time())  # after the agents' events: the engine's clock only moves on
                if v is not None and v.state == "running":
                    await self._maybe_complete()
                if now - last_live >= LIVE_EVERY_S:
                    last_live = now
                    await self._write_live(now)
                await self._heartbeat(now)
                await asyncio.sleep(TICK_S)
            self.stopping = True  # calls still waiting for the trunk are not placed
            if self.in_flight:
                log.info("campaign %s/%d: waiting for %d calls in progress", self.cid, self.partition, len(self.in_flight))
            while self.in_flight:
                await asyncio.wait(self.in_flight, timeout=HEARTBEAT_S / 2)
                await self._heartbeat(self.loop.time())
        finally:
            follow_stop.set()
            await asyncio.gather(following, return_exceptions=True)

    async def _place(self, now: float) -> None:
        assert self.client is not None and self.view is not None
        n = self.engine.decide(now)
        self.decisions += 1
        if n <= 0:
            return
        spec = self.view.spec
        mode = self.view.mode
        script: Script | None = None
        if mode == "ivr":
            script_name = spec.get("ivr_script")
            if not script_name:
                return
            script = await self.gateway.script(str(script_name))
        elif mode in AGENT_MODES:
            await self._agent_dialer(spec)
        else:
            return  # manual and preview: agents take their customers with `next`
        lease_s = float(spec["ring_timeout_s"]) + self.gateway.settings.claim_lease_s
        # Agent modes: a due callback is dialled only while the agent it is reserved for is ready.
        agents = self.pool.ready_agents() if mode in AGENT_MODES and self.pool is not None else None
        claims = await self.client.claim(n, partition=self.partition, lease_s=lease_s, with_attrs=bool(spec.get("sms")),
                                         agents=agents)
        for c in claims:
            self.batches[c.batch] = self.batches.get(c.batch, 0) + 1
            call_id = f"{self.cid}/{c.number}/{c.attempts + 1}"
            self.engine.call_dialed(call_id, self.loop.time())
            self.placed_times.append(self.loop.time())
            self.counts.dialled += 1
            work = self._call(c, call_id, script) if script is not None else self._agent_call(c, call_id)
            task = asyncio.create_task(work)
            self.in_flight.add(task)
            task.add_done_callback(self._call_done)

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its outcome was not recorded: the claim's lease runs out and the contact comes back.
            log.error("campaign %s/%d: a call's outcome was not recorded: %r", self.cid, self.partition, task.exception())

    async def _call(self, claim: dialer_core.Claim, call_id: str, script: Script) -> None:
        assert self.client is not None and self.view is not None
        assert self.uac is not None
        runner = IvrRunner(self.uac, self.gateway.hub, script, max_call_s=self.gateway.settings.max_call_s)

        def answered() -> None:
            t = self.loop.time()
            self.engine.call_answered(call_id, t)
            self.engine.call_connected(call_id, t)  # an IVR port takes every answered call

        try:
            await self._dial(claim, call_id, runner, answered)
        finally:
            self._batch_done(claim)

    async def _dial(self, claim: dialer_core.Claim, call_id: str, runner: IvrRunner, answered: Callable[[], None]) -> None:
        assert self.client is not None
        try:
            out = await runner.call(dial_string(claim.number), cfg=self.cfg, on_answered=answered,
                                    admit=lambda: self.dialling_allowed(datetime.now(UTC)))
        except NotPlaced:
            # Paused, stopped or out of the window while it waited for the trunk: not dialled.
            self.engine.call_unanswered(call_id, self.loop.time(), "failed")
            self.counts.dialled -= 1
            await self.client.complete([dialer_core.Completion(claim.number, claim.token, "released", release=True)])
            return
        except Exception as e:  # a bug or a transport error: give the contact back, never lose it
            log.exception("campaign %s: call to %s failed", self.cid, claim.number)
            self.engine.call_unanswered(call_id, self.loop.time(), "failed")
            await self.client.complete([dialer_core.Completion(claim.number, claim.token, "failed", release=True)])
            await cdr.record(self.redis, cdr.CallRecord(campaign=self.cid, number=claim.number, outcome="failed",
                                                        attempt=claim.attempts + 1, call_id=call_id, detail=str(e)))
            return
        await self._finish(claim, call_id, out)

    async def _finish(self, claim: dialer_core.Claim, call_id: str, out: IvrOutcome) -> None:
        assert self.client is not None and self.view is not None
        r = out.call
        now = self.loop.time()
        outcome = r.outcome.value if r.outcome else "failed"
        self._ended(call_id, r, now)
        self.counts.by_outcome[outcome] = self.counts.by_outcome.get(outcome, 0) + 1
        spec = self.view.spec
        sms_status = None
        if out.sms and spec.get("sms"):
            self.counts.agreed += 1
            text = sms_text(spec["sms"]["template"], claim.number, dict(claim.attrs))
            queued = await sms.request_sms(self.redis, self.cid, claim.number, text, spec["sms"]["sender"])
            sms_status = "requested" if queued else "already_requested"
            self.counts.sms_requested += queued
        elif out.results.get("agreed") == "yes":
            self.counts.agreed += 1
        await self.client.complete([(claim, outcome)])
        # Monotonic times of the call -> wall clock for the archive.
        shift = time.time() - now
        wall = {k: (v + shift if v is not None else None)
                for k, v in (("dialled", r.dialed_at), ("ringing", r.ringing_at), ("answered", r.answered_at),
                             ("ended", r.ended_at))}
        await cdr.record(self.redis, cdr.CallRecord(
            campaign=self.cid, number=claim.number, outcome=outcome, attempt=claim.attempts + 1, call_id=call_id,
            dialled_at=wall["dialled"], ringing_at=wall["ringing"], answered_at=wall["answered"],
            ended_at=wall["ended"], sip_code=r.code, dtmf=out.pressed, answers=out.results, sms_status=sms_status,
            detail=r.reason if not out.ended_by else f"{r.reason}; ended by {out.ended_by}",
        ))

    async def _agent_dialer(self, spec: dict[str, Any]) -> AgentDialer:
        vietnamese = spec.get("country") == "VN"
        text = spec.get("abandon_message") or (
            f"Cuộc gọi này từ số {spec['caller_id']}. Chúng tôi sẽ gọi lại quý khách sau." if vietnamese
            else f"This call was from {spec['caller_id']}. We will call you again later.")
        prompt = await self.gateway.abandon_prompt(self.cid, str(text), "vi" if vietnamese else "en")
        limit = float(spec["pacing"].get("connect_limit_s", 2.0))
        if self.agents is None or self.agents.abandon_prompt != prompt or self.agents.connect_limit_s != limit:
            assert self.uac is not None
            self.agents = AgentDialer(self.uac, self.gateway.hub, abandon_prompt=prompt, connect_limit_s=limit,
                                      max_call_s=self.gateway.settings.max_call_s)
        return self.agents

    async def _agent_call(self, claim: dialer_core.Claim, call_id: str) -> None:
        """A customer call of an agent campaign: connected to the agent the pool reserves, or
        abandoned with the identification message. A connected customer's contact is completed
        by the agent's disposition (the claim's lease is renewed until then)."""
        assert self.client is not None and self.pool is not None and self.agents is not None
        pool = self.pool
        api_call = f"{self.cid}:{self.partition}:{claim.token}"
        record = {"campaign": self.cid, "number": claim.number, "token": str(claim.token),
                  "partition": str(self.partition), "attempts": str(claim.attempts)}
        reserved: list[Agent] = []

        async def reserve() -> Agent | None:
            while True:  # until an agent is free; the dialer gives up at the connect limit
                # A callback goes to the agent it was set by, and only to that agent.
                agent = await pool.reserve(api_call, record, only=claim.agent if claim.source == "callback" else None)
                if agent is not None:
                    reserved.append(agent)
                    return agent
                await asyncio.sleep(0.05)

        t = self.loop.time
        try:
            try:
                out = await self.agents.call(
                    dial_string(claim.number), reserve, cfg=self.cfg,
                    on_answered=lambda: self.engine.call_answered(call_id, t()),
                    on_connected=lambda agent: self.engine.call_connected(call_id, t()),
                    on_abandoned=lambda: self.engine.call_abandoned(call_id, t()),
                    admit=lambda: self.dialling_allowed(datetime.now(UTC)))
            except NotPlaced:
                self.engine.call_unanswered(call_id, t(), "failed")
                self.counts.dialled -= 1
                await self.client.complete([dialer_core.Completion(claim.number, claim.token, "released", release=True)])
                return
            await self._agent_finish(claim, call_id, api_call, out, reserved)
        finally:
            self._batch_done(claim)

    async def _agent_finish(self, claim: dialer_core.Claim, call_id: str, api_call: str, out: AgentOutcome,
                            reserved: list[Agent]) -> None:
        assert self.client is not None and self.pool is not None
        r = out.customer
        now = self.loop.time()
        outcome = r.outcome.value if r.outcome else "failed"
        self._ended(call_id, r, now)
        shift = time.time() - now
        agent = reserved[0] if reserved else None
        connected = out.connected_at is not None and agent is not None
        if agent is not None and not connected:
            await self.pool.unreserve(agent.id, api_call)
        if out.abandoned:
            outcome = "abandoned"
        self.counts.by_outcome[outcome] = self.counts.by_outcome.get(outcome, 0) + 1
        detail = r.reason
        if connected and out.connected_at is not None and r.answered_at is not None:
            detail = f"connected to {agent.id if agent else '?'} {1000 * (out.connected_at - r.answered_at):.0f} ms after the answer"
        await cdr.record(self.redis, cdr.CallRecord(
            campaign=self.cid, number=claim.number, outcome="connected" if connected else outcome,
            attempt=claim.attempts + 1, call_id=api_call if connected else call_id,
            dialled_at=r.dialed_at + shift, ringing_at=r.ringing_at + shift if r.ringing_at else None,
            answered_at=r.answered_at + shift if r.answered_at else None, ended_at=r.ended_at + shift if r.ended_at else None,
            sip_code=r.code, agent=agent.id if connected and agent else None, detail=f"{detail}; ended by {out.ended_by}",
        ))
        if not connected:
            await self.client.complete([(claim, outcome)])
            return
        assert agent is not None
        self.pool.wrap(agent.id)
        # The agent's disposition completes the contact; until then its claim stays leased.
        while not await self.pool.disposed(agent.id, api_call):
            await asyncio.sleep(0.5)

    async def _place_handed(self) -> None:
        """Manual and preview: dial the customers handed to agents that are due (the agent said
        so, or the preview time passed), each put through to the agent it was handed to."""
        due = await handout.take_due(self.redis, self.cid, self.partition, time.time(), self.node)
        if not due:
            return
        spec = self.view.spec if self.view is not None else {}
        await self._agent_dialer(spec)
        for call_id in due:
            record = cast(dict[str, str], await self.redis.hgetall(call_key(call_id)))
            if record.get("dial") != "waiting":
                await handout.placed(self.redis, self.cid, self.partition, call_id)
                continue  # its disposition came first
            raw = await self.redis.hget(AGENTS, record["agent"])
            uri = json.loads(raw).get("sip_uri") if raw else None
            await self.redis.hset(call_key(call_id), "dial", "dialling")
            task = asyncio.create_task(self._handed_call(call_id, record, Agent(record["agent"], str(uri or ""))))
            self.in_flight.add(task)
            task.add_done_callback(self._call_done)

    async def _handed_call(self, api_call: str, record: dict[str, str], agent: Agent) -> None:
        requeued = False
        try:
            requeued = await self._place_handed_call(api_call, record, agent)
        finally:
            if not requeued:
                await handout.placed(self.redis, self.cid, self.partition, api_call)

    async def _place_handed_call(self, api_call: str, record: dict[str, str], agent: Agent) -> bool:
        """Place one handed call; True if it went back to the dial set unplaced."""
        assert self.client is not None and self.agents is not None and self.pool is not None
        pool = self.pool
        number, token, attempts = record["number"], int(record["token"]), int(record.get("attempts", "0"))
        call_id = f"{self.cid}/{number}/{attempts + 1}"
        t = self.loop.time
        self.engine.call_dialed(call_id, t())
        self.placed_times.append(t())
        self.counts.dialled += 1
        pool.talking(agent.id)

        async def reserve() -> Agent | None:
            return agent  # handed to this agent before it was dialled

        async def mark_connected() -> None:
            await self.redis.hset(call_key(api_call), "dial", "connected")

        marks: list[asyncio.Task[None]] = []

        def connected(a: Agent) -> None:
            self.engine.call_connected(call_id, t())
            marks.append(self.loop.create_task(mark_connected()))

        try:
            out = await self.agents.call(
                dial_string(number), reserve, cfg=self.cfg,
                on_answered=lambda: self.engine.call_answered(call_id, t()), on_connected=connected,
                on_abandoned=lambda: self.engine.call_abandoned(call_id, t()),
                admit=lambda: self.dialling_allowed(datetime.now(UTC)))
        except NotPlaced:
            # Paused or out of the window while it waited for the trunk: it waits again.
            self.engine.call_unanswered(call_id, t(), "failed")
            self.counts.dialled -= 1
            await self.redis.hset(call_key(api_call), "dial", "waiting")
            await handout.placed(self.redis, self.cid, self.partition, api_call)
            await handout.offer(self.redis, self.cid, self.partition, api_call, time.time())
            pool.wrap(agent.id)
            return True
        except Exception as e:  # a bug or a transport error: give the contact back, free the agent
            log.exception("campaign %s: call to %s for %s failed", self.cid, number, agent.id)
            self.engine.call_unanswered(call_id, t(), "failed")
            pool.wrap(agent.id)
            (result,) = await self.client.complete([dialer_core.Completion(number, token, "failed", release=True)])
            await handout.end(self.redis, self.cid, api_call, agent.id, {
                "agent": agent.id, "call_id": api_call, "outcome": "failed", "result": result, "by": "dialer", "detail": str(e)})
            return False
        await asyncio.gather(*marks)
        r = out.customer
        now = t()
        outcome = r.outcome.value if r.outcome else "failed"
        self._ended(call_id, r, now)
        connected_ok = out.connected_at is not None
        if out.abandoned:
            outcome = "abandoned"
        self.counts.by_outcome[outcome] = self.counts.by_outcome.get(outcome, 0) + 1
        pool.wrap(agent.id)
        shift = time.time() - now
        detail = r.reason
        if connected_ok and out.connected_at is not None and r.answered_at is not None:
            detail = f"connected to {agent.id} {1000 * (out.connected_at - r.answered_at):.0f} ms after the answer"
        await cdr.record(self.redis, cdr.CallRecord(
            campaign=self.cid, number=number, outcome="connected" if connected_ok else outcome, attempt=attempts + 1,
            call_id=api_call, dialled_at=r.dialed_at + shift, ringing_at=r.ringing_at + shift if r.ringing_at else None,
            answered_at=r.answered_at + shift if r.answered_at else None, ended_at=r.ended_at + shift if r.ended_at else None,
            sip_code=r.code, agent=agent.id, detail=f"{detail}; ended by {out.ended_by}",
        ))
        if connected_ok:
            return False  # the agent's disposition completes the contact
        # Nobody to talk to: the outcome completes the contact (the retry policy applies) and
        # ends the agent's call, so that it can take the next customer.
        (result,) = await self.client.complete([dialer_core.Completion(number, token, outcome)])
        await handout.end(self.redis, self.cid, api_call, agent.id,
                          {"agent": agent.id, "call_id": api_call, "outcome": outcome, "result": result, "by": "dialer"})
        return False

    def _ended(self, call_id: str, r: CallResult, now: float) -> None:
        """Tell the engine how a customer call ended, and count the answered."""
        if r.answered_at is not None:
            self.engine.call_ended(call_id, now)
            self.counts.answered += 1
        else:
            reason: dialer_core.UnansweredReason = (
                "busy" if r.outcome is Outcome.BUSY else "no_answer" if r.outcome is Outcome.NO_ANSWER else "failed")
            self.engine.call_unanswered(call_id, now, reason)

    def _batch_done(self, claim: dialer_core.Claim) -> None:
        """One call of a claim batch is over: its lease needs no more renewing."""
        left = self.batches.get(claim.batch, 1) - 1
        if left > 0:
            self.batches[claim.batch] = left
        else:
            self.batches.pop(claim.batch, None)

    async def _heartbeat(self, now: float) -> None:
        if now - self.last_heartbeat < HEARTBEAT_S or not self.batches or self.queue is None or self.view is None:
            return
        self.last_heartbeat = now
        lease_s = float(self.view.spec["ring_timeout_s"]) + self.gateway.settings.claim_lease_s
        try:
            await asyncio.to_thread(self.queue.renew, list(self.batches), partition=self.partition, lease_s=lease_s)
        except (dialer_core.RedisError, ConnectionError) as e:
            log.warning("campaign %s/%d: leases not renewed: %s", self.cid, self.partition, e)

    async def _maybe_complete(self) -> None:
        assert self.queue is not None and self.view is not None
        end = _when(self.view.spec.get("end_at"))
        past_end = end is not None and datetime.now(UTC) >= end
        if not past_end:
            if self.in_flight:
                return
            s = await asyncio.to_thread(self.queue.stats)
            if not s["exists"]:
                return
            left = s["ready"] + s["retry_waiting"] + s["retry_due"] + s["callbacks_waiting"] + s["callbacks_due"] + s["leased"]
            if left:
                return
        if self.in_flight:
            return
        event = {"action": "complete", "state": "completed", "by": "runtime",
                 "reason": "end time passed" if past_end else "list exhausted"}
        done = await self.redis.eval(_COMPLETE, 2, api_key(self.cid), events_key(self.cid),
                                     datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                                     json.dumps(event), 10_000)
        if done:
            log.info("campaign %s completed (%s)", self.cid, event["reason"])

    async def _write_live(self, now: float) -> None:
        recent = [t for t in self.placed_times if t > now - 5.0]
        self.placed_times = recent
        try:
            await write_live(self.redis, self.cid, live_figures(self.engine, cps=len(recent) / 5.0,
                                                                 decisions=self.decisions))
        except aioredis.RedisError as e:
            log.warning("campaign %s: live figures not written: %s", self.cid, e)


class Dialer:
    """Takes the partitions of running campaigns it can lease, and runs them."""

    def __init__(self, redis_url: str, settings: GatewaySettings, node: str | None = None) -> None:
        self.redis_url = redis_url
        self.settings = settings
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self.runners: dict[tuple[str, int], tuple[PartitionRunner, asyncio.Task[None], asyncio.Event]] = {}
        self.gateway: Gateway | None = None
        #: Campaigns naming a trunk this node does not have (said once, in the log and the
        #: campaign's events).
        self.no_trunk: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        redis = connect(self.redis_url)
        self.gateway = await Gateway.open(self.settings)
        log.info("dialling through %s:%d over %s, as %s", *self.settings.trunk, self.settings.transport, self.node)
        for t in self.settings.named:
            log.info("trunk %s: %s:%d over %s", t.name, *t.address, t.transport)
        last_renew = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    await self._scan(redis)
                    if loop.time() - last_renew >= RENEW_S:
                        last_renew = loop.time()
                        await self._renew(redis)
                except aioredis.RedisError as e:
                    log.warning("runtime: Redis: %s", e)
                await cdr.sleep_or_stop(stop, SCAN_S)
        finally:
            for _, task, s in self.runners.values():
                s.set()
            await asyncio.gather(*(t for _, t, _ in self.runners.values()), return_exceptions=True)
            for (cid, p) in list(self.runners):
                await redis.eval(_RELEASE, 1, lease_key(cid, p), self.node)
            await redis.zrem(NODES, self.node)
            self.gateway.close()
            await redis.aclose()

    def hurry(self) -> None:
        """Stopping, and asked again: hang up the calls in progress instead of waiting for them.
        Each call's outcome is still recorded (the contact is not dialled again)."""
        if self.gateway is not None:
            n = self.gateway.hangup_all()
            log.warning("stopping at once: %d calls in progress hung up", n)

    async def _scan(self, redis: aioredis.Redis) -> None:
        assert self.gateway is not None
        for key in [k for k, (_, t, _) in self.runners.items() if t.done()]:
            _, task, _ = self.runners.pop(key)
            await redis.eval(_RELEASE, 1, lease_key(*key), self.node)
            if not task.cancelled() and task.exception() is not None:
                log.error("campaign %s/%d stopped on an error: %r", key[0], key[1], task.exception())
        now_ms = int(time.time() * 1000)
        await redis.zadd(NODES, {self.node: now_ms})
        await redis.zremrangebyscore(NODES, "-inf", now_ms - LEASE_MS)
        nodes = max(1, int(await redis.zcard(NODES)))
        ids = [str(i) for i in await redis.zrange(CAMPAIGNS, 0, -1)]
        for cid in ids:
            raw = await redis.hmget(api_key(cid), ["state", "spec"])
            state, spec_json = raw[0], raw[1]
            if state not in ("running", "paused") or spec_json is None:
                continue
            spec = json.loads(spec_json)
            partitions = int(spec.get("partitions", 1))
            trunk = spec.get("trunk") or None
            if self.gateway.uac_for(trunk) is None:
                if cid not in self.no_trunk:
                    self.no_trunk.add(cid)
                    why = (f"trunk {trunk!r} is not configured on node {self.node} (its named trunks: "
                           f"{', '.join(sorted(self.gateway.named)) or 'none'}): it dials nothing of campaign {cid}")
                    log.error("%s", why)
                    await redis.xadd(events_key(cid), {"type": "error", "data": json.dumps({"node": self.node, "error": why})},
                                     maxlen=10_000, approximate=True)
                continue
            self.no_trunk.discard(cid)
            # Each node takes its share of a campaign's partitions; one holding more than its
            # share (others joined since) lets one go per scan, after its calls end.
            fair = -(-partitions // nodes)
            mine = [p for (c, p), (_, t, s) in self.runners.items() if c == cid and not s.is_set()]
            if len(mine) > fair:
                log.info("campaign %s partition %d: handed back (%d nodes share %d partitions)",
                         cid, mine[-1], nodes, partitions)
                self.runners[(cid, mine[-1])][2].set()
                continue
            for p in range(partitions):
                if (cid, p) in self.runners or len(mine) >= fair:
                    continue
                if await redis.eval(_LEASE, 1, lease_key(cid, p), self.node, LEASE_MS):
                    mine.append(p)
                    runner = PartitionRunner(self.redis_url, redis, self.gateway, cid, p, self.node)
                    s = asyncio.Event()
                    self.runners[(cid, p)] = (runner, asyncio.create_task(runner.run(s)), s)
                    log.info("campaign %s partition %d: taken by %s", cid, p, self.node)

    async def _renew(self, redis: aioredis.Redis) -> None:
        for (cid, p), (_, _, s) in self.runners.items():
            if not await redis.eval(_LEASE, 1, lease_key(cid, p), self.node, LEASE_MS):
                log.warning("campaign %s partition %d: lease lost; no new calls from this node", cid, p)
                s.set()

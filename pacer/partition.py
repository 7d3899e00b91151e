"""`PartitionRunner`: dials one partition of one campaign while this node holds its lease.

Every 100 ms, while the campaign is running, inside its start/end time and inside a calling
window in its time zone, it asks the pacing engine how many calls to place, claims that many
contacts and places each call (`pacer/calls.py`). Pause and stop place no new calls; calls in
progress finish. Claim leases are renewed while their calls go on. A running campaign whose list
is exhausted (nothing ready, waiting or claimed, no call in progress) or whose end time passed is
completed through the store's lifecycle (`complete`, by the runtime).

Redis going away is waited out. Nothing is claimed while it does not answer; the calls in
progress go on, and each one's outcome is written when Redis is back (`pacer/calls.py` retries
its plan, step by step, for up to `OUTCOME_RETRY_S`). Redis may also come back without its last
writes (restarted from an AOF missing its last second): a claim then answers `RedisRewound`, or
the Dialer sees a new server run id, or a completion of a call in progress finds its lease gone.
After any failure, before it claims or writes an outcome again, the runner re-asserts
(`CallQueue.reassert`) the leases and dial marks of its calls in progress and of the ones it
completed in the last `JOURNAL_S`, then writes those completions and SMS requests again (each is
idempotent): nobody whose claim was lost is handed out twice, no lost outcome is left undone.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dialer_core

from pacer.actions import EngineEvent, Plan, SmsRequest
from pacer.agents import AgentPool
from pacer.calls import Calls
from pacer.campaign import CampaignFollower, apply_pacing, live_figures
from pacer.gateway import Gateway
from pacer.orphans import Incarnation, Orphans
from pacer.outage import Outage
from pacer.windows import CallingWindows
from sip_gateway.agent import AgentDialer
from sip_gateway.call import TrunkConfig
from sip_gateway.uac import Uac
from store import Store
from store.campaigns import CampaignView, State
from store.cdr import CallRecord
from store.errors import Conflict, Missing, StoreError
from store.queue import Queue

log = logging.getLogger("dialer.runtime")

#: Modes whose answered calls go to agents (manual and preview hand customers out with `next`).
AGENT_MODES = ("predictive", "progressive")
#: Modes whose customers are handed to agents first, then dialled (`next`, the dial set).
HANDS_OUT = ("manual", "preview")
TICK_S = 0.1
LIVE_EVERY_S = 1.0
#: Claim leases are renewed this often while their calls go on (`GatewaySettings.claim_lease_s`).
HEARTBEAT_S = 2.0
#: Claims completed (and SMS requested) this recently are re-asserted and written again after
#: Redis lost writes: AOF everysec loses up to about two seconds, and a restart is noticed within
#: a lease renewal (`Dialer.renew_s`, 2 s by default) at the latest.
JOURNAL_S = 10.0


def when(value: Any) -> datetime | None:
    """A campaign's start or end time (ISO 8601, UTC when it names no zone)."""
    if not value:
        return None
    d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Written:
    """A completion or an SMS request written moments ago (the journal `_reassert` replays)."""

    at: float
    claim: dialer_core.Claim | None
    mark: str
    complete: dialer_core.Completion | None
    sms: SmsRequest | None


@dataclass
class Counts:
    dialled: int = 0
    answered: int = 0
    agreed: int = 0
    sms_requested: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class PartitionRunner:
    def __init__(self, redis_url: str, store: Store, gateway: Gateway, cid: str, partition: int, node: str = "",
                 inc: Incarnation | None = None) -> None:
        self.redis_url = redis_url
        #: This node's name, as in the partition's lease.
        self.node = node
        self.store = store
        self.gateway = gateway
        self.cid = cid
        self.partition = partition
        self.view: CampaignView | None = None
        self.deleted = False
        #: The loop has ended (node stopping, campaign stopped, partition let go): no new INVITE leaves.
        self.stopping = False
        self.engine = dialer_core.PacingEngine(mode="ivr", max_channels=1)
        self.queue: Queue | None = None
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
        self.calls = Calls(self)
        #: This process as its dial marks name it; a dead one's calls found here are ended.
        self.orphans = Orphans(self, inc or Incarnation.new(node))
        #: Answered calls whose mark is not written yet (`answered`), with what the mark keeps.
        self.answers: list[tuple[dialer_core.Claim, str]] = []
        self.marking = False
        #: Why the last claim was refused (a suppression list missing), reported once.
        self.refused: str | None = None
        #: A changed retry policy, not yet given to the queue.
        self.policy: tuple[int, float, list[str]] | None = None
        #: Token -> (claim, its dial mark after "token|") of every call in progress.
        self.held: dict[int, tuple[dialer_core.Claim, str]] = {}
        #: What was written in the last `JOURNAL_S`, oldest first.
        self.journal: collections.deque[Written] = collections.deque()
        #: Redis failed since the claims were last re-asserted: nothing is claimed, no outcome
        #: written, until `_reassert` has run (`writable` is set again).
        self.suspect = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.outage = Outage(log, f"campaign {cid}/{partition}")

    # --- following the campaign ------------------------------------------------------------

    def on_change(self, view: CampaignView | None) -> None:
        if view is None:
            self.deleted = True
            return
        spec = view.spec
        try:
            apply_pacing(self.engine, view, partition=self.partition)
        except ValueError as e:
            log.error("campaign %s: pacing settings refused by the engine: %s", self.cid, e)
        # The queue's retry policy: applied on the next tick (opening the queue talks to Redis).
        self.policy = (int(spec["max_attempts"]), float(spec["retry_delay_s"]), list(spec["retry_on"]))
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
        if v is None or v.state is not State.RUNNING or self.uac is None or self.stopping:
            return False
        start, end = when(v.spec.get("start_at")), when(v.spec.get("end_at"))
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
                try:
                    last_live = await self._tick(last_live)
                    self.outage.ok()
                except (StoreError, dialer_core.RedisError) as e:
                    self.redis_failed(e)
                await asyncio.sleep(TICK_S)
            self.stopping = True  # calls still waiting for the trunk are not placed
            if self.in_flight:
                log.info("campaign %s/%d: waiting for %d calls in progress", self.cid, self.partition, len(self.in_flight))
            while self.in_flight:
                await asyncio.wait(self.in_flight, timeout=HEARTBEAT_S / 2)
                try:
                    await self._recover()
                    await self._heartbeat(self.loop.time())
                except (StoreError, dialer_core.RedisError) as e:
                    self.redis_failed(e)
        finally:
            follow_stop.set()
            await asyncio.gather(following, return_exceptions=True)

    async def _tick(self, last_live: float) -> float:
        v = self.view
        if v is not None and v.state not in (State.RUNNING, State.PAUSED):
            self.deleted = True  # stopped or completed: this runner's work is done
            return last_live
        if self.policy is not None:
            await self._apply_policy(*self.policy)
        await self._recover()  # after a Redis failure: before anything is claimed or completed
        now = self.loop.time()
        if v is not None and v.mode in AGENT_MODES + HANDS_OUT and self.pool is None:
            self.pool = AgentPool(self.store.agents, self.cid, self.engine)
        if self.pool is not None:
            self.pool.allowed = set(v.spec.get("agents") or ()) or None if v is not None else None
            await self.pool.sync()
        if self.queue is not None:
            await self.orphans.sweep(now)
        if v is not None and self.queue is not None and self.dialling_allowed(datetime.now(UTC)):
            if v.mode in HANDS_OUT:
                await self.calls.place_handed()
            else:
                await self._place(self.loop.time())  # after the agents' events: the engine's clock only moves on
        if v is not None and v.state is State.RUNNING and self.queue is not None:
            await self._maybe_complete()
        if now - last_live >= LIVE_EVERY_S:
            last_live = now
            await self._write_live(now)
        await self._heartbeat(now)
        return last_live

    async def _apply_policy(self, max_attempts: int, retry_delay_s: float, retry_on: list[str]) -> None:
        if self.queue is None:
            self.queue = await Queue.open(self.redis_url, self.cid, max_attempts=max_attempts, retry_delay_s=retry_delay_s,
                                          retry_on=retry_on)
        else:
            await self.queue.configure(max_attempts=max_attempts, retry_delay_s=retry_delay_s, retry_on=retry_on)
        self.policy = None

    async def _place(self, now: float) -> None:
        assert self.queue is not None and self.view is not None
        n = self.engine.decide(now)
        self.decisions += 1
        if n <= 0:
            return
        spec = self.view.spec
        mode = self.view.mode
        if mode == "ivr":
            script_name = spec.get("ivr_script")
            if not script_name:
                return
            script = await self.gateway.script(str(script_name))
        elif mode in AGENT_MODES:
            await self.agent_dialer(spec)
            script = None
        else:
            return  # manual and preview: agents take their customers with `next`
        lease_s = float(spec["ring_timeout_s"]) + self.gateway.settings.claim_lease_s
        # Agent modes: a due callback is dialled only while the agent it is reserved for is ready.
        agents = self.pool.ready_agents() if mode in AGENT_MODES and self.pool is not None else None
        await self.orphans.register()  # how this node places its calls, before the first leaves
        try:
            # Marked dialled in the same script: if this node dies from now on, each is an attempt
            # (`interrupted`), never a free call again.
            claims = await self.queue.claim(n, partition=self.partition, lease_s=lease_s, with_attrs=bool(spec.get("sms")),
                                            agents=agents, dialling=self.gateway.settings.dial_marks,
                                            owner=self.orphans.inc.id)
        except dialer_core.ListMissing as e:
            # Fail closed: nobody is dialled while a list the campaign honours is gone.
            if str(e) != self.refused:
                self.refused = str(e)
                log.error("campaign %s/%d: %s", self.cid, self.partition, e)
                await self.store.campaigns.publish(self.cid, "error", {"node": self.node, "error": str(e)})
            return
        self.refused = None
        await self._record_interrupted()
        mark = f"d|{self.orphans.inc.id}" if self.gateway.settings.dial_marks else ""
        for c in claims:
            self.held[c.token] = (c, mark)
            self.batches[c.batch] = self.batches.get(c.batch, 0) + 1
            call_id = f"{self.cid}/{c.number}/{c.attempts + 1}"
            self.dialled(call_id)
            work = self.calls.ivr(c, call_id, script) if script is not None else self.calls.agent(c, call_id)
            self.spawn(work)

    async def _record_interrupted(self) -> None:
        """A CDR for each dialled contact whose lease a claim found expired (a dead node's calls):
        what became of it, as the queue decided."""
        assert self.queue is not None
        found = await self.queue.take_interrupted()
        if not found:
            return
        now = time.time()
        ended = self.orphans.ended
        records = [CallRecord(campaign=self.cid, number=number, outcome="answered" if result == "answered" else "interrupted",
                              attempt=attempts, call_id=f"{self.cid}/{number}/{attempts}", ended_at=now,
                              detail=f"interrupted: the node placing the call stopped; {result}"
                                     + (f"; {ended.pop(number)}" if number in ended else ""))
                   for number, _, attempts, result in found]
        await self.store.cdr.append(*records)
        log.warning("campaign %s/%d: %d calls of a stopped node found interrupted", self.cid, self.partition, len(found))

    def spawn(self, work: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.in_flight.add(task)
        task.add_done_callback(self._call_done)
        return task

    def answered(self, claim: dialer_core.Claim, call_id: str) -> None:
        """A call was answered: marked so at once, so that if this node dies before the outcome
        is recorded the contact is final, never called again for it, and the node that takes
        over hangs it up (the mark keeps its dialog). Group commit: the answers that come while
        a mark is being written go together in the next one, so a busy node writes one mark per
        round trip, not one per answer, and a quiet one adds no delay."""
        if not self.gateway.settings.dial_marks:
            return
        detail = self.orphans.detail(call_id)
        if claim.token in self.held:
            self.held[claim.token] = (claim, f"a|{detail}")
        self.answers.append((claim, detail))
        if not self.marking:
            self.marking = True
            self.spawn(self._mark_answers())

    async def _mark_answers(self) -> None:
        try:
            while self.answers:
                batch, self.answers = self.answers, []
                try:
                    assert self.queue is not None
                    await self.queue.mark([c for c, _ in batch], answered=True, details=[d for _, d in batch])
                except (StoreError, dialer_core.RedisError) as e:
                    # Written with the claims re-asserted once Redis is back (`held` has them).
                    log.warning("campaign %s/%d: %d answers not marked yet: %s", self.cid, self.partition, len(batch), e)
                    self.redis_failed(e)
        finally:
            self.marking = False

    # --- Redis failing, and coming back without its last writes -------------------------------

    def redis_failed(self, e: BaseException) -> None:
        """A Redis command failed: claims and outcome writes wait for `_reassert`."""
        self.outage.failed(e)
        self.suspect = True
        self.writable.clear()

    def redis_restarted(self) -> None:
        """The Dialer saw a new Redis server run id: it may have come back without its last writes."""
        self.suspect = True
        self.writable.clear()

    def lost(self, completion: dialer_core.Completion) -> bool:
        """A completion answered `stale`: True if its claim is one of this runner's calls in
        progress (so its lease should be there: Redis lost it)."""
        return completion.token in self.held

    def written(self, plan: Plan) -> None:
        """A plan's completion or SMS request is written: journalled for `JOURNAL_S`."""
        now = self.loop.time()
        self._prune(now)
        if plan.complete is None and plan.sms is None:
            return
        held = self.held.get(plan.complete.token) if plan.complete is not None else None
        self.journal.append(Written(at=now, claim=held[0] if held else None, mark=held[1] if held else "",
                                    complete=plan.complete, sms=plan.sms))

    def _prune(self, now: float) -> None:
        while self.journal and self.journal[0].at < now - JOURNAL_S:
            self.journal.popleft()

    async def _recover(self) -> None:
        if self.suspect and self.queue is not None:
            await self._reassert()

    async def _reassert(self) -> None:
        """Write back the leases and dial marks of the calls in progress and of those completed
        in the last `JOURNAL_S`, then those completions and SMS requests again."""
        assert self.queue is not None and self.view is not None
        now = self.loop.time()
        self._prune(now)
        # A contact's newest claim only: one held again since (a retry) is re-asserted as held.
        newest: dict[str, tuple[dialer_core.Claim, str]] = {}
        for w in self.journal:
            if w.claim is not None:
                newest[w.claim.number] = (w.claim, w.mark)
        newest.update({c.number: (c, m) for c, m in self.held.values()})
        items = {c.token: (c, m) for c, m in newest.values()}
        lease_s = float(self.view.spec["ring_timeout_s"]) + self.gateway.settings.claim_lease_s
        found = await self.queue.reassert([c for c, _ in items.values()], [m for _, m in items.values()],
                                          partition=self.partition, lease_s=lease_s)
        sms = 0
        # The SMS requests first, as `actions.execute` orders them; the completions in one call.
        for w in list(self.journal):
            if w.sms is not None:
                sms += await self.store.sms.request(w.sms.campaign, w.sms.number, w.sms.text, w.sms.sender)
        done = [w.complete for w in self.journal if w.complete is not None]
        replayed = sum(res != "stale" for res in await self.queue.complete(done)) if done else 0
        counts = collections.Counter(found)
        if counts["restored"] or counts["taken"] or replayed or sms:
            log.warning("campaign %s/%d: Redis had lost writes: %d claims restored, %d taken by another claimer; "
                        "%d completions and %d SMS requests written again (%d calls in progress, %d completed "
                        "in the last %.0f s)", self.cid, self.partition, counts["restored"], counts["taken"], replayed,
                        sms, len(self.held), len(self.journal), JOURNAL_S)
        else:
            log.info("campaign %s/%d: after a Redis failure, %d calls in progress and %d just completed "
                     "re-asserted: nothing was lost", self.cid, self.partition, len(self.held), len(self.journal))
        self.suspect = False
        self.writable.set()

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its outcome was not recorded: the claim's lease runs out and the contact comes back.
            log.error("campaign %s/%d: a call's outcome was not recorded: %r", self.cid, self.partition, task.exception())

    # --- what the calls tell the engine and the counts ---------------------------------------

    def dialled(self, call_id: str) -> None:
        t = self.loop.time()
        self.engine.call_dialed(call_id, t)
        self.placed_times.append(t)
        self.counts.dialled += 1

    def apply(self, plan: Plan) -> None:
        """The in-process part of a plan: the pacing engine and the counts."""
        e: EngineEvent | None = plan.engine
        if e is not None:
            if e.kind == "ended":
                self.engine.call_ended(e.call_id, self.loop.time())
            else:
                self.engine.call_unanswered(e.call_id, self.loop.time(), e.reason)
        if plan.not_dialled:
            self.counts.dialled -= 1
        if plan.answered:
            self.counts.answered += 1
        if plan.outcome is not None:
            self.counts.by_outcome[plan.outcome] = self.counts.by_outcome.get(plan.outcome, 0) + 1
        if plan.agreed:
            self.counts.agreed += 1
        if plan.wrap is not None and self.pool is not None:
            self.pool.wrap(plan.wrap)

    async def agent_dialer(self, spec: dict[str, Any]) -> AgentDialer:
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

    # --- leases, completion, live figures ------------------------------------------------------

    def batch_done(self, claim: dialer_core.Claim) -> None:
        """One call of a claim batch is over: its lease needs no more renewing."""
        self.held.pop(claim.token, None)
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
            await self.queue.renew(list(self.batches), partition=self.partition, lease_s=lease_s)
        except (dialer_core.RedisError, ConnectionError) as e:
            log.warning("campaign %s/%d: leases not renewed: %s", self.cid, self.partition, e)
            self.redis_failed(e)

    async def _maybe_complete(self) -> None:
        assert self.queue is not None and self.view is not None
        end = when(self.view.spec.get("end_at"))
        past_end = end is not None and datetime.now(UTC) >= end
        if not past_end:
            if self.in_flight:
                return
            s = await self.queue.stats()
            if not s["exists"]:
                return
            left = s["ready"] + s["retry_waiting"] + s["retry_due"] + s["callbacks_waiting"] + s["callbacks_due"] + s["leased"]
            if left:
                return
        if self.in_flight:
            return
        reason = "end time passed" if past_end else "list exhausted"
        try:
            await self.store.campaigns.transition(self.cid, "complete", "runtime", detail={"reason": reason})
        except (Conflict, Missing):
            return  # stopped, completed or deleted meanwhile
        log.info("campaign %s completed (%s)", self.cid, reason)

    async def _write_live(self, now: float) -> None:
        recent = [t for t in self.placed_times if t > now - 5.0]
        self.placed_times = recent
        try:
            await self.store.campaigns.write_live(self.cid, self.partition, live_figures(self.engine, cps=len(recent) / 5.0,
                                                                         decisions=self.decisions))
        except StoreError as e:
            log.warning("campaign %s: live figures not written: %s", self.cid, e)

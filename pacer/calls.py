"""The calls one partition places: an IVR call, an agent campaign's customer call, a customer
handed to an agent (manual, preview). Each places the call through the SIP gateway, turns what
it reports into `CallFacts`, asks `pacer/transitions.py` what follows, and executes the plan
(`pacer/actions.py`). Nothing is decided here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dialer_core

from pacer import transitions
from pacer.actions import CloseCall, Plan, Progress, execute
from pacer.transitions import CallFacts, Clock, Contact
from sip_gateway.agent import Agent, AgentOutcome
from sip_gateway.call import OutboundCall
from sip_gateway.errors import NotPlaced
from sip_gateway.ivr.runner import IvrOutcome, IvrRunner
from sip_gateway.ivr.script import Script
from sip_gateway.orphans import SavedDialog
from sip_gateway.outcomes import CallResult
from store.agents import Dial
from store.errors import StoreError

if TYPE_CHECKING:
    from pacer.partition import PartitionRunner

log = logging.getLogger("dialer.runtime")

#: An agent who neither sets a disposition nor leaves is waited for this long, then its call is
#: closed as `no_disposition` (the customer talked to it: final, not dialled again).
MAX_WRAP_S = 4 * 3600.0
#: An outcome not written because Redis does not answer is tried again for this long; then the
#: claim's lease runs out and its contact comes back as `interrupted`.
OUTCOME_RETRY_S = 300.0
DISPOSITION_POLL_S = 0.5


def dial_string(number: str) -> str:
    """What goes in the Request-URI: the E.164 number without its '+'."""
    return number.lstrip("+")


def agent_call_id(cid: str, partition: int, token: int) -> str:
    """The agent's call an agent campaign's customer call opens (its record: `store.agents`)."""
    return f"{cid}:{partition}:{token}"


def contact_of(claim: dialer_core.Claim) -> Contact:
    return Contact(claim.number, claim.token, claim.attempts, dict(claim.attrs))


def facts(call_id: str, r: CallResult, **kw: object) -> CallFacts:
    """The gateway's report of a customer call as transition facts."""
    return CallFacts(call_id=call_id, outcome=r.outcome.value if r.outcome else None, code=r.code, reason=r.reason,
                     dialled_at=r.dialed_at, ringing_at=r.ringing_at, answered_at=r.answered_at, ended_at=r.ended_at,
                     **kw)  # type: ignore[arg-type]


class Calls:
    def __init__(self, runner: PartitionRunner) -> None:
        self.r = runner

    def _clock(self) -> Clock:
        return Clock(mono=self.r.loop.time(), wall=time.time())

    def _admit(self) -> Callable[[], bool]:
        return lambda: self.r.dialling_allowed(datetime.now(UTC))

    async def _run(self, plan: Plan) -> dialer_core.CompleteResult | None:
        """Apply `plan` in process, then write it; while Redis does not answer, written again
        (the steps not yet written: `Progress`) once it does and the runner has re-asserted its
        claims, for up to `OUTCOME_RETRY_S`."""
        r = self.r
        r.apply(plan)
        progress = Progress()
        released = plan.release_reservation is None or r.pool is None
        give_up = r.loop.time() + OUTCOME_RETRY_S
        delay = 0.1
        rewound = False
        while True:
            try:
                await asyncio.wait_for(r.writable.wait(), max(0.0, give_up - r.loop.time()))
            except TimeoutError:
                pass  # tried once more below, and given up if it fails
            try:
                if not released:
                    assert r.pool is not None and plan.release_reservation is not None
                    await r.pool.release(plan.release_reservation)
                    released = True
                # A stale completion of a call in progress means its lease was lost: re-asserted,
                # then tried once more (a second `stale` is true: the lease ran out meanwhile).
                done = await execute(plan, r.store, r.queue, progress, lost=None if rewound else r.lost)
                break
            except (StoreError, dialer_core.RedisError) as e:
                if r.loop.time() >= give_up:
                    raise
                rewound = rewound or isinstance(e, dialer_core.RedisRewound)
                r.redis_failed(e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        r.written(plan)
        r.counts.sms_requested += done.sms_queued
        return done.result

    # --- IVR ------------------------------------------------------------------------------------

    async def ivr(self, claim: dialer_core.Claim, call_id: str, script: Script) -> None:
        r = self.r
        assert r.uac is not None and r.view is not None
        runner = IvrRunner(r.uac, r.gateway.hub, script, max_call_s=r.gateway.settings.max_call_s)
        contact = contact_of(claim)
        ids = r.orphans.ids(claim.token)

        def answered() -> None:
            t = r.loop.time()
            r.engine.call_answered(call_id, t)
            r.engine.call_connected(call_id, t)  # an IVR port takes every answered call
            r.answered(claim, ids.call_id)

        # The SMS is requested when the script reaches its SMS node, not when the call ends: a
        # presser whose call is then cut by this node's death still gets it (at most once).
        early: list[asyncio.Task[dialer_core.CompleteResult | None]] = []

        def sms_reached() -> None:
            assert r.view is not None
            early.append(asyncio.create_task(self._run(transitions.sms_reached(r.cid, r.view.spec, contact))))

        try:
            try:
                out: IvrOutcome = await runner.call(dial_string(claim.number), cfg=r.cfg, on_answered=answered,
                                                    admit=self._admit(), on_sms=sms_reached, ids=ids)
            except NotPlaced:
                # Paused, stopped or out of the window while it waited for the trunk: not dialled.
                await self._run(transitions.not_placed(contact, call_id))
                return
            except Exception as e:  # a bug or a transport error: give the contact back, never lose it
                log.exception("campaign %s: call to %s failed", r.cid, claim.number)
                await self._run(transitions.call_failed(r.cid, contact, call_id, str(e)))
                return
            f = facts(call_id, out.call, ended_by=out.ended_by, pressed=out.pressed, results=dict(out.results), sms=out.sms)
            requested = False
            for t in early:
                try:
                    await t
                    requested = True
                except (StoreError, dialer_core.RedisError) as e:  # asked again with the outcome
                    log.warning("campaign %s: the SMS of %s not requested yet: %s", r.cid, claim.number, e)
            await self._run(transitions.ivr_call_ended(r.cid, r.view.spec, contact, f, self._clock(),
                                                       sms_requested=requested))
        finally:
            r.batch_done(claim)

    # --- predictive and progressive -----------------------------------------------------------------

    async def agent(self, claim: dialer_core.Claim, call_id: str) -> None:
        """A customer call of an agent campaign: connected to the agent the pool reserves, or
        abandoned with the identification message. A connected customer's contact is completed
        by the agent's disposition (the claim's lease is renewed until then)."""
        r = self.r
        assert r.pool is not None and r.agents is not None
        pool = r.pool
        api_call = agent_call_id(r.cid, r.partition, claim.token)
        record = {"campaign": r.cid, "number": claim.number, "token": str(claim.token),
                  "partition": str(r.partition), "attempts": str(claim.attempts)}
        contact = contact_of(claim)
        ids = r.orphans.ids(claim.token)

        async def reserve() -> Agent | None:
            while True:  # until an agent is free; the dialer gives up at the connect limit
                # A callback goes to the agent it was set by, and only to that agent.
                agent = await pool.reserve(api_call, record, only=claim.agent if claim.source == "callback" else None)
                if agent is not None:
                    return agent
                await asyncio.sleep(0.05)

        t = r.loop.time

        def answered() -> None:
            r.engine.call_answered(call_id, t())
            r.answered(claim, ids.call_id)

        def connected(agent: Agent, leg: OutboundCall) -> None:
            r.engine.call_connected(call_id, t())
            saved = SavedDialog.of(leg)
            if saved is not None and r.gateway.settings.dial_marks:  # for a node taking over to hang it up
                r.spawn(self._save_leg(api_call, saved))

        try:
            try:
                out: AgentOutcome = await r.agents.call(
                    dial_string(claim.number), reserve, cfg=r.cfg,
                    on_answered=answered,
                    on_connected=connected,
                    on_abandoned=lambda: r.engine.call_abandoned(call_id, t()),
                    admit=self._admit(), ids=ids)
            except NotPlaced:
                await self._run(transitions.not_placed(contact, call_id))
                return
            except Exception as e:  # a bug or a transport error: give the contact back, free the agent
                log.exception("campaign %s: call to %s failed", r.cid, claim.number)
                await pool.release(api_call)
                await self._run(transitions.call_failed(r.cid, contact, call_id, str(e)))
                return
            agent = out.agent.id if out.agent is not None else None
            f = facts(call_id, out.customer, ended_by=out.ended_by, agent=agent, connected_at=out.connected_at,
                      abandoned=out.abandoned)
            plan = transitions.agent_call_ended(r.cid, contact, f, api_call, self._clock())
            if plan.await_disposition is not None:
                pool.connected(api_call)
            await self._run(plan)
            if plan.await_disposition is not None:
                await self._await_disposition(*plan.await_disposition, contact)
        finally:
            r.batch_done(claim)

    async def _save_leg(self, api_call: str, saved: SavedDialog) -> None:
        """Kept in the agent's open call: if this node dies while the customer is connected, the
        node that takes over hangs the agent's phone up too, and the call stays open for its
        disposition (`Orphans`)."""
        try:
            await self.r.store.agents.set_leg(api_call, saved.dumps())
        except (StoreError, dialer_core.RedisError) as e:
            log.warning("campaign %s: the agent's leg of %s not kept (not hung up if this node dies): %s",
                        self.r.cid, api_call, e)

    async def adopted(self, claim: dialer_core.Claim, agent: str, api_call: str) -> None:
        """A dead node's call its agent still has open, kept leased here until its disposition."""
        try:
            await self._await_disposition(agent, api_call, contact_of(claim))
        finally:
            self.r.batch_done(claim)

    async def _await_disposition(self, agent: str, api_call: str, contact: Contact) -> None:
        """The agent's disposition completes the contact; until then its claim stays leased. An
        agent who never sets one is given up on after `MAX_WRAP_S`."""
        r = self.r
        assert r.pool is not None
        deadline = r.loop.time() + MAX_WRAP_S
        while not await r.pool.disposed(agent, api_call):
            if r.loop.time() >= deadline:
                log.warning("campaign %s: agent %s set no disposition for call %s in %.0f s: closed as no_disposition",
                            r.cid, agent, api_call, MAX_WRAP_S)
                await self._run(Plan(
                    complete=dialer_core.Completion(contact.number, contact.token, "no_disposition"),
                    close=CloseCall(api_call, agent, r.cid, event={
                        "agent": agent, "call_id": api_call, "outcome": "no_disposition", "by": "dialer"}, if_open=True)))
                return
            await asyncio.sleep(DISPOSITION_POLL_S)

    # --- manual and preview -------------------------------------------------------------------------

    async def place_handed(self) -> None:
        """Dial the customers handed to agents that are due (the agent said so, or the preview
        time passed), each put through to the agent it was handed to."""
        r = self.r
        due = await r.store.dialsets.take_due(r.cid, r.partition, time.time(), r.node)
        if not due:
            return
        spec = r.view.spec if r.view is not None else {}
        await r.agent_dialer(spec)
        for call_id in due:
            record = await r.store.agents.call_or_none(call_id) or {}
            if record.get("dial") != Dial.WAITING:
                await r.store.dialsets.placed(r.cid, r.partition, call_id)
                continue  # its disposition came first
            uri = (await r.store.agents.sip_uris([record["agent"]])).get(record["agent"], "")
            await r.store.agents.set_dial(call_id, Dial.DIALLING)
            r.spawn(self._handed(call_id, record, Agent(record["agent"], uri)))

    async def _handed(self, api_call: str, record: dict[str, str], agent: Agent) -> None:
        requeued = False
        try:
            requeued = await self._place_handed(api_call, record, agent)
        finally:
            if not requeued:
                await self.r.store.dialsets.placed(self.r.cid, self.r.partition, api_call)

    async def _place_handed(self, api_call: str, record: dict[str, str], agent: Agent) -> bool:
        """Place one handed call; True if it went back to the dial set unplaced."""
        r = self.r
        assert r.agents is not None and r.pool is not None
        pool = r.pool
        contact = Contact(record["number"], int(record["token"]), int(record.get("attempts", "0")))
        call_id = f"{r.cid}/{contact.number}/{contact.attempts + 1}"
        t = r.loop.time
        r.dialled(call_id)
        pool.talking(agent.id)

        async def reserve() -> Agent | None:
            return agent  # handed to this agent before it was dialled

        marks: list[asyncio.Task[None]] = []

        def connected(a: Agent, leg: OutboundCall) -> None:
            r.engine.call_connected(call_id, t())
            marks.append(r.loop.create_task(r.store.agents.set_dial(api_call, Dial.CONNECTED)))

        try:
            out = await r.agents.call(
                dial_string(contact.number), reserve, cfg=r.cfg,
                on_answered=lambda: r.engine.call_answered(call_id, t()), on_connected=connected,
                on_abandoned=lambda: r.engine.call_abandoned(call_id, t()), admit=self._admit())
        except NotPlaced:
            # Paused or out of the window while it waited for the trunk: it waits again.
            r.engine.call_unanswered(call_id, t(), "failed")
            r.counts.dialled -= 1
            await r.store.agents.set_dial(api_call, Dial.WAITING)
            await r.store.dialsets.placed(r.cid, r.partition, api_call)
            await r.store.dialsets.offer(r.cid, r.partition, api_call, time.time())
            pool.wrap(agent.id)
            return True
        except Exception as e:  # a bug or a transport error: give the contact back, free the agent
            log.exception("campaign %s: call to %s for %s failed", r.cid, contact.number, agent.id)
            await self._run(transitions.call_failed(r.cid, contact, call_id, str(e), handed_to=agent.id, api_call=api_call))
            return False
        await asyncio.gather(*marks)
        f = facts(call_id, out.customer, ended_by=out.ended_by, agent=agent.id, connected_at=out.connected_at,
                  abandoned=out.abandoned)
        await self._run(transitions.handed_call_ended(r.cid, contact, f, api_call, agent.id, self._clock()))
        return False

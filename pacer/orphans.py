"""A dead dialer's calls, found on a partition and ended by the node that holds it now.

Each dialer process is an `Incarnation`: a random id and secret, new at every start. Before its
runner places a partition's first call it writes how it places them (`RunInfo`, in the
partition's `:run` hash); every call's Call-ID, tag and INVITE branch are derived from its secret
and the claim's token (`CallIds`); the claim's dial marks name it, and an answered mark keeps the
dialog (`SavedDialog`). The incarnation stays alive in Redis while its Dialer renews it (beside
its partition leases, and expiring just before them).

When a runner starts on a partition, and every `SWEEP_S` while marks of another live incarnation
are there (a node that lost its lease but still has calls in progress), it reads the dial marks:
those of an incarnation no longer alive are orphans. Each is ended - CANCEL for a call still
ringing, BYE for an answered one (`sip_gateway/orphans.py`) - and then the dead node's claim
leases are ended at once, so the next claim counts its contacts by their marks (an attempt, or
final `answered`) and the CDR says what was done.

Agent campaigns (predictive, progressive): a customer connected to an agent has the agent's leg
kept in the agent's open call (`leg`, written when they are bridged). That call is an agent's
work in progress, not a lost call: the agent's phone gets its BYE too, and the call is adopted
(`CallQueue.adopt`) - its contact stays leased by this node, the call open on the agent's screen,
until the agent's disposition completes it (as it would have; the customer is not called again).
A reservation never connected is closed (the agent is ready again). Not covered: an agent's leg
answered in the round trip before its `leg` is written, and calls handed to agents (manual,
preview), which carry no dial mark.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import dialer_core
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pacer.calls import agent_call_id, dial_string
from sip_gateway.call import CallIds
from sip_gateway.dialog import host_key
from sip_gateway.orphans import Ending, RunInfo, SavedDialog
from store.cdr import CallRecord
from store.errors import StoreError

if TYPE_CHECKING:
    from pacer.partition import PartitionRunner

log = logging.getLogger("dialer.runtime")

#: While another live incarnation has calls on the partition, its marks are looked at this often.
SWEEP_S = 2.0


@dataclass(frozen=True)
class Incarnation:
    """This dialer process, as its dial marks name it."""

    id: str
    secret: bytes
    node: str

    @classmethod
    def new(cls, node: str) -> Incarnation:
        return cls(id=os.urandom(6).hex(), secret=os.urandom(16), node=node)

    def ids(self, cid: str, partition: int, token: int, host: str) -> CallIds:
        return CallIds.derive(self.secret, call_name(cid, partition, token), host)


def call_name(cid: str, partition: int, token: int) -> str:
    """What a call's ids are derived from: its claim's token is unique in the partition."""
    return f"{cid}/{partition}/{token}"


def owner_of(detail: str) -> str:
    """The incarnation a mark's detail names ("" for a mark written without one)."""
    return detail.split("|", 1)[0]


class Orphans:
    def __init__(self, runner: PartitionRunner, inc: Incarnation) -> None:
        self.r = runner
        self.inc = inc
        #: The `RunInfo` last written for this incarnation.
        self.registered = ""
        #: Look at the marks on the next tick (at the start, and while another live node has some).
        self.pending = True
        self.next_sweep = 0.0
        self.task: asyncio.Task[None] | None = None
        #: (number, token) of the orphans already ended.
        self.handled: set[tuple[str, int]] = set()
        #: Number -> what was done to its call, for the CDR of its interrupted attempt.
        self.ended: dict[str, str] = {}

    async def register(self) -> None:
        """Before this incarnation places a call: how it places them (written when it changes)."""
        r = self.r
        assert r.cfg is not None and r.queue is not None
        info = RunInfo.of(self.inc.node, self.inc.secret, r.cfg).dumps()
        if info != self.registered:
            await r.store.nodes.register_run(r.cid, r.partition, self.inc.id, info, partitions=r.queue.partitions)
            self.registered = info

    def ids(self, token: int) -> CallIds:
        r = self.r
        assert r.cfg is not None
        return self.inc.ids(r.cid, r.partition, token, r.cfg.local[0])

    def detail(self, call_id: str) -> str:
        """What an answered mark keeps: this incarnation, and the dialog to BYE if it dies."""
        c = self.r.uac.calls.get(call_id) if self.r.uac is not None else None
        saved = SavedDialog.of(c) if c is not None else None
        return f"{self.inc.id}|{saved.dumps()}" if saved is not None else self.inc.id

    async def sweep(self, now: float) -> None:
        """Find the orphans of dead incarnations and end them (in the background)."""
        r = self.r
        if not self.pending or now < self.next_sweep or r.queue is None or r.uac is None:
            return
        if self.task is not None and not self.task.done():
            return
        self.next_sweep = now + SWEEP_S
        marks = [m for m in await r.queue.marks(r.partition)
                 if owner_of(m[3]) not in ("", self.inc.id) and (m[0], m[1]) not in self.handled]
        if not marks:
            self.pending = False
            return
        owners = sorted({owner_of(m[3]) for m in marks})
        alive = await r.store.nodes.living(owners)
        dead = [m for m in marks if owner_of(m[3]) not in alive]
        self.pending = len(dead) < len(marks)
        if dead:
            runs = await r.store.nodes.runs(r.cid, r.partition, partitions=r.queue.partitions)
            self.handled.update((m[0], m[1]) for m in dead)
            self.task = r.spawn(self._end(dead, runs, sorted({owner_of(m[3]) for m in dead})))

    async def _end(self, dead: list[tuple[str, int, str, str]], runs: dict[str, str], owners: list[str]) -> None:
        r = self.r
        assert r.uac is not None and r.queue is not None
        uac = r.uac
        # Agent campaigns: the dead node's calls still open on an agent's screen (no disposition).
        records = await self._agents_calls(dead)
        endings: list[Ending] = []
        numbers: list[str] = []
        unknown = 0
        adopt: list[tuple[str, int, str, dict[str, str]]] = []
        unreserve: list[tuple[str, str]] = []
        for number, token, kind, detail in dead:
            ending = self._ending(number, token, kind, detail, runs)
            if ending is None:
                unknown += 1
            elif ending.txs:
                endings.append(ending)
                numbers.append(number)
            api_call = agent_call_id(r.cid, r.partition, token)
            record = records.get(api_call)
            if record is None:
                continue
            if kind == "answered" and "leg" in record:
                # Connected (or wrapping up): the agent's phone is hung up too (unless an earlier
                # take-over did), and the call stays open, leased here, for its disposition.
                leg = self._agent_leg(record) if detail.partition("|")[2] else None
                if leg is not None:
                    endings.append(leg)
                    numbers.append(number)
                adopt.append((number, token, api_call, record))
            else:  # reserved, never connected: the agent is free again
                unreserve.append((api_call, record["agent"]))
        answers = uac.end(endings)  # sent now
        for number, e in zip(numbers, endings, strict=True):
            self.ended[number] = "; ".join(filter(None, (self.ended.get(number), f"{e.method} sent at take-over by "
                                                                                  f"{self.inc.node}")))
        try:
            await self._adopt(adopt)
            for api_call, agent in unreserve:
                await r.store.agents.close_call(api_call, agent, if_open=True)
            # Their contacts are counted at the next claim, by their marks, not when the dead
            # node's leases would have run out (an adopted call's lease is a new one: kept).
            await r.queue.expire_leases(r.partition, [token for _, token, _, _ in dead])
            await r.store.nodes.forget_runs(r.cid, r.partition, owners, partitions=r.queue.partitions)
        except (StoreError, dialer_core.RedisError) as e:
            log.warning("campaign %s/%d: a dead node's leases not ended (they run out by themselves): %s",
                        r.cid, r.partition, e)
        byes = sum(1 for e in endings if e.method == "BYE")
        log.warning("campaign %s/%d: %d calls of a dead node (%s) being ended: %d BYE, %d CANCEL%s%s", r.cid,
                    r.partition, len(dead) - unknown, ", ".join(owners), byes, len(endings) - byes,
                    f"; {len(adopt)} kept open for their agents' dispositions" if adopt else "",
                    f"; {unknown} cannot be (how they were placed is unknown)" if unknown else "")
        outcomes = await asyncio.gather(*answers)
        tally: dict[str, int] = {}
        for o in outcomes:
            tally[o] = tally.get(o, 0) + 1
        log.info("campaign %s/%d: a dead node's calls ended: %s", r.cid, r.partition,
                 "; ".join(f"{n} x {o}" for o, n in sorted(tally.items())) or "none")

    async def _agents_calls(self, dead: list[tuple[str, int, str, str]]) -> dict[str, dict[str, str]]:
        """The records of the dead node's calls that an agent still has open."""
        r = self.r
        if r.pool is None:
            return {}
        return await r.store.agents.open_records([agent_call_id(r.cid, r.partition, token) for _, token, _, _ in dead])

    def _agent_leg(self, record: dict[str, str]) -> Ending | None:
        uac = self.r.uac
        assert uac is not None
        try:
            saved = SavedDialog.loads(record["leg"])
        except (ValueError, TypeError, IndexError):
            return None
        bye = saved.bye(uac.cfg.local, uac.cfg.transport)
        return Ending(saved.call_id, [(bye, saved.next_hop)], uac.cfg.transport in ("TCP", "TLS"),
                      {host_key(saved.next_hop[0])})

    async def _adopt(self, calls: list[tuple[str, int, str, dict[str, str]]]) -> None:
        """Keep the dead node's connected calls leased here until their agents' dispositions,
        and say in the CDR what became of each."""
        r = self.r
        if not calls:
            return
        assert r.queue is not None and r.view is not None
        lease_s = float(r.view.spec["ring_timeout_s"]) + r.gateway.settings.claim_lease_s
        claims = await r.queue.adopt([(n, t, self.inc.id) for n, t, _, _ in calls], partition=r.partition,
                                     lease_s=lease_s)
        now = time.time()
        records = []
        for (number, _, api_call, record), claim in zip(calls, claims, strict=True):
            if claim is None:
                continue  # completed meanwhile (its disposition came first)
            r.held[claim.token] = (claim, f"a|{self.inc.id}")
            r.batches[claim.batch] = 1
            r.spawn(r.calls.adopted(claim, record["agent"], api_call))
            records.append(CallRecord(
                campaign=r.cid, number=number, outcome="connected", attempt=claim.attempts + 1, call_id=api_call,
                ended_at=now, agent=record["agent"],
                detail="interrupted: the node placing the call stopped; connected to the agent; "
                       + (self.ended.pop(number, "") or "ended before") + "; its disposition completes it"))
        if records:
            await r.store.cdr.append(*records)

    def _ending(self, number: str, token: int, kind: str, detail: str, runs: dict[str, str]) -> Ending | None:
        uac = self.r.uac
        assert uac is not None
        owner, _, saved_text = detail.partition("|")
        if kind == "answered" and not saved_text:
            # No dialog kept: a call adopted by a node since dead too (ended at that take-over).
            return Ending("", [], False, set())
        info = runs.get(owner)
        if info is None:
            return None
        try:
            run = RunInfo.loads(info)
        except (ValueError, KeyError, TypeError):
            log.warning("campaign %s/%d: unreadable run record of %s: %r", self.r.cid, self.r.partition, owner, info)
            return None
        peers = {host_key(run.trunk[0]), host_key(uac.cfg.trunk[0])}
        reliable = uac.cfg.transport in ("TCP", "TLS")
        if kind == "answered":
            try:
                saved = SavedDialog.loads(saved_text)
            except (ValueError, TypeError, IndexError):
                return None
            peers.add(host_key(saved.next_hop[0]))
            bye = saved.bye(uac.cfg.local, uac.cfg.transport)
            return Ending(saved.call_id, [(bye, saved.next_hop)], reliable, peers)
        # Still ringing (or answered an instant before the node died, its answer not marked yet:
        # then the CANCEL changes nothing, the window `docs/architecture.md` measures).
        name = call_name(self.r.cid, self.r.partition, token)
        cancels = run.cancels(name, dial_string(number))
        return Ending(run.ids(name).call_id, [(c, run.trunk) for c in cancels], reliable, peers)

"""The dial role: `Dialer` dials running campaigns through this node's SIP gateway.

Every second it looks at the campaigns that are running or paused and takes the lease of each
free partition (`store.nodes`: a key with a `--partition-lease` expiry, 6 s by default, renewed
three times a lease by its owner): several dialing nodes on one Redis share the work, and a
partition whose owner died is taken over once its lease expires. The runner that takes it ends
the dead owner's calls and counts their contacts (`pacer/orphans.py`). Each partition it holds
runs a `PartitionRunner` (pacer/partition.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from pacer.cdr import sleep_or_stop
from pacer.gateway import Gateway, GatewaySettings, NamedTrunk
from pacer.orphans import Incarnation
from pacer.outage import Outage
from pacer.partition import PartitionRunner
from store import Store
from store.errors import StoreError

log = logging.getLogger("dialer.runtime")

SCAN_S = 1.0

__all__ = ["Dialer", "GatewaySettings", "NamedTrunk"]


class Dialer:
    """Takes the partitions of running campaigns it can lease, and runs them."""

    def __init__(self, redis_url: str, settings: GatewaySettings, node: str | None = None) -> None:
        self.redis_url = redis_url
        self.settings = settings
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        #: New at every start: the calls a dead incarnation leaves are ended by whoever takes over.
        self.inc = Incarnation.new(self.node)
        self.runners: dict[tuple[str, int], tuple[PartitionRunner, asyncio.Task[None], asyncio.Event]] = {}
        self.gateway: Gateway | None = None
        #: Campaigns naming a trunk this node does not have (said once, in the log and the
        #: campaign's events).
        self.no_trunk: set[str] = set()
        self.lease_ms = int(settings.partition_lease_s * 1000)
        #: Renewed three times a lease: two renewals may fail (a slow Redis) before it is lost.
        self.renew_s = max(SCAN_S, settings.partition_lease_s / 3)
        #: The Redis server's run id when last looked at (each renewal): a new one is a restart.
        self.redis_run_id: str | None = None
        self.outage = Outage(log, "runtime")

    async def run(self, stop: asyncio.Event) -> None:
        store = Store(self.redis_url)
        self.gateway = await Gateway.open(self.settings)
        log.info("dialling through %s:%d over %s from %s:%d, as %s (incarnation %s)", *self.settings.trunk,
                 self.settings.transport, *self.gateway.uac.cfg.local, self.node, self.inc.id)
        for t in self.settings.named:
            log.info("trunk %s: %s:%d over %s", t.name, *t.address, t.transport)
        last_renew = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    if loop.time() - last_renew >= self.renew_s:
                        last_renew = loop.time()
                        await self._renew(store)
                    await self._scan(store)
                    self.outage.ok()
                except StoreError as e:
                    self.outage.failed(e)
                await sleep_or_stop(stop, SCAN_S)
        finally:
            for _, task, s in self.runners.values():
                s.set()
            tasks = {t for _, t, _ in self.runners.values()}
            while tasks:  # their calls end; this incarnation is alive meanwhile, or they are orphans
                _, tasks = await asyncio.wait(tasks, timeout=self.renew_s)
                if tasks:
                    try:
                        await store.nodes.alive(self.inc.id, self.node, self.lease_ms)
                    except StoreError as e:
                        log.warning("runtime: Redis: %s", e)
            try:
                for (cid, p) in list(self.runners):
                    await store.nodes.release(cid, p, self.node)
                await store.nodes.leave(self.node)
                await store.nodes.gone(self.inc.id)
            except StoreError as e:
                log.warning("runtime: leases not given back (they expire by themselves): %s", e)
            self.gateway.close()
            await store.close()

    def hurry(self) -> None:
        """Stopping, and asked again: hang up the calls in progress instead of waiting for them.
        Each call's outcome is still recorded (the contact is not dialled again)."""
        if self.gateway is not None:
            n = self.gateway.hangup_all()
            log.warning("stopping at once: %d calls in progress hung up", n)

    async def _scan(self, store: Store) -> None:
        assert self.gateway is not None
        for key in [k for k, (_, t, _) in self.runners.items() if t.done()]:
            _, task, _ = self.runners.pop(key)
            await store.nodes.release(*key, self.node)
            if not task.cancelled() and task.exception() is not None:
                log.error("campaign %s/%d stopped on an error: %r", key[0], key[1], task.exception())
        nodes = await store.nodes.announce(self.node, max(self.lease_ms, 2000))
        for view in await store.campaigns.dialing():
            cid = view.id
            partitions = int(view.spec.get("partitions", 1))
            trunk = view.spec.get("trunk") or None
            if self.gateway.uac_for(trunk) is None:
                if cid not in self.no_trunk:
                    self.no_trunk.add(cid)
                    why = (f"trunk {trunk!r} is not configured on node {self.node} (its named trunks: "
                           f"{', '.join(sorted(self.gateway.named)) or 'none'}): it dials nothing of campaign {cid}")
                    log.error("%s", why)
                    await store.campaigns.publish(cid, "error", {"node": self.node, "error": why})
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
                if await store.nodes.take(cid, p, self.node, self.lease_ms):
                    mine.append(p)
                    runner = PartitionRunner(self.redis_url, store, self.gateway, cid, p, self.node, self.inc)
                    s = asyncio.Event()
                    self.runners[(cid, p)] = (runner, asyncio.create_task(runner.run(s)), s)
                    log.info("campaign %s partition %d: taken by %s", cid, p, self.node)

    async def _renew(self, store: Store) -> None:
        # First: alive a little less long than the leases it holds, so that whoever takes one
        # over finds this incarnation dead, and ends its calls.
        await store.nodes.alive(self.inc.id, self.node, self.lease_ms)
        run_id = await store.server_id()
        if self.redis_run_id is not None and run_id != self.redis_run_id:
            # Restarted: maybe without its last writes. Each runner re-asserts its calls in
            # progress before it claims again (a claim would refuse anyway once rewound).
            log.warning("runtime: Redis restarted (run id %s, was %s): the calls in progress are re-asserted",
                        run_id[:12], self.redis_run_id[:12])
            for runner, _, _ in self.runners.values():
                runner.redis_restarted()
        self.redis_run_id = run_id
        for (cid, p), (_, _, s) in self.runners.items():
            if not await store.nodes.take(cid, p, self.node, self.lease_ms):
                log.warning("campaign %s partition %d: lease lost; no new calls from this node", cid, p)
                s.set()

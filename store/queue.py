"""The one adapter between asyncio and the Rust call queue (`dialer_core.CallQueue`).

`CallQueue` is synchronous and releases the GIL while it talks to Redis; every call here runs
in a thread so the event loop never blocks on it: short operations (claims, completions,
stats) in the default executor, long ones (listings and exports; the API's imports and list
loads, through `bulk`) on `BULK`'s own threads and, for listings, on a `CallQueue` of their own,
so that a few whole imports or exports never hold every thread, or a claim's queue, for minutes. `Queue` is one campaign's queue
with a few `CallQueue`s used in turn (each holds one Redis connection and serves one call at a
time, so the claims, completions and stats of one campaign overlap); `Queues` keeps one `Queue`
per campaign and applies a changed retry policy when the campaign's revision moves.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dialer_core

CompletionItem = dialer_core.Completion | tuple[dialer_core.Claim, str] | tuple[str, int, str]
T = TypeVar("T")

#: Threads for long work (see the module's docstring): at most two at once per process.
BULK = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dialer-bulk")


async def bulk(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on a `BULK` thread."""
    return await asyncio.get_running_loop().run_in_executor(BULK, functools.partial(fn, *args, **kwargs))


class Queue:
    """Async face of one campaign's call queue."""

    def __init__(self, queues: list[dialer_core.CallQueue], make: Callable[[], dialer_core.CallQueue] | None = None) -> None:
        self._queues = queues
        self._turn = itertools.count()
        self._make = make
        #: The listings' own queue (opened at the first listing).
        self._bulk: dialer_core.CallQueue | None = None

    @classmethod
    async def open(cls, redis_url: str, cid: str, *, partitions: int | None = None, max_attempts: int,
                   retry_delay_s: float, retry_on: list[str], pool: int = 1) -> Queue:
        def one() -> dialer_core.CallQueue:
            if partitions is None:
                return dialer_core.CallQueue(redis_url, cid, max_attempts=max_attempts, retry_delay_s=retry_delay_s,
                                             retry_on=retry_on)
            return dialer_core.CallQueue(redis_url, cid, partitions=partitions, max_attempts=max_attempts,
                                         retry_delay_s=retry_delay_s, retry_on=retry_on)
        return cls([await asyncio.to_thread(one) for _ in range(pool)], one)

    def _q(self) -> dialer_core.CallQueue:
        return self._queues[next(self._turn) % len(self._queues)]

    @property
    def campaign(self) -> str:
        return self._queues[0].campaign

    @property
    def partitions(self) -> int:
        return self._queues[0].partitions

    async def configure(self, *, max_attempts: int, retry_delay_s: float, retry_on: list[str]) -> None:
        for q in [*self._queues, *([self._bulk] if self._bulk is not None else [])]:
            await asyncio.to_thread(q.configure, max_attempts=max_attempts, retry_delay_s=retry_delay_s, retry_on=retry_on)

    async def claim(self, n: int, *, partition: int = 0, lease_s: float = 60.0, with_attrs: bool = False,
                    agents: list[str] | None = None, dialling: bool = False,
                    owner: str | None = None) -> list[dialer_core.Claim]:
        return await asyncio.to_thread(self._q().claim, n, partition=partition, lease_s=lease_s, with_attrs=with_attrs,
                                       agents=agents, dialling=dialling, owner=owner)

    async def mark(self, claims: list[dialer_core.Claim], *, answered: bool = False,
                   details: list[str] | None = None) -> int:
        """Mark claims dialled (their INVITEs are leaving) or answered: if this node dies, their
        expired leases come back as attempts (`interrupted`) or as final `answered` calls.
        `details`: kept with each answered mark (the dialog to end if this node dies)."""
        if not claims:
            return 0
        return await asyncio.to_thread(self._q().mark, claims, answered=answered, details=details)

    async def marks(self, partition: int) -> list[tuple[str, int, str, str]]:
        """The partition's dial marks: (number, token, "dialled" | "answered", detail)."""
        return list(await asyncio.to_thread(self._q().marks, partition=partition))

    async def expire_leases(self, partition: int, tokens: list[int]) -> int:
        """End the claim leases holding these tokens now (a dead node's, its calls ended)."""
        return await asyncio.to_thread(self._q().expire_leases, tokens, partition=partition) if tokens else 0

    async def reassert(self, claims: list[dialer_core.Claim], marks: list[str], *, partition: int,
                       lease_s: float) -> list[str]:
        """After Redis lost writes: the leases and dial marks of these claims written back (see
        `dialer_core.CallQueue.reassert`); "held", "restored", "done" or "taken" each."""
        return list(await asyncio.to_thread(self._q().reassert, claims, marks, partition=partition, lease_s=lease_s))

    async def adopt(self, calls: list[tuple[str, int, str]], *, partition: int,
                    lease_s: float) -> list[dialer_core.Claim | None]:
        """A dead dialer's calls its agents still have open, kept leased for this one (see
        `dialer_core.CallQueue.adopt`): each one's new claim, or None."""
        return list(await asyncio.to_thread(self._q().adopt, calls, partition=partition, lease_s=lease_s))

    async def take_interrupted(self) -> list[tuple[str, int, int, str]]:
        """What the claims found of dialled contacts whose dialer died (no Redis call: the claims
        brought it; a thread all the same, as a claim may hold the connection), from every
        connection of this queue."""
        out: list[tuple[str, int, int, str]] = []
        for q in self._queues:
            out += await asyncio.to_thread(q.take_interrupted)
        return out

    async def complete(self, items: Iterable[CompletionItem]) -> list[dialer_core.CompleteResult]:
        batch = list(items)
        return await asyncio.to_thread(self._q().complete, batch)

    async def renew(self, batches: list[int], *, partition: int, lease_s: float) -> None:
        await asyncio.to_thread(self._q().renew, batches, partition=partition, lease_s=lease_s)

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._q().stats)

    async def contact(self, number: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._q().contact, number)

    async def contacts(self, *, state: str | None = None, cursor: str | None = None, count: int = 100) -> dict[str, Any]:
        """A page of contacts (a listing reads up to 1,024 bucket hashes a round trip): on the
        bulk threads and the listings' own queue, never holding up a claim."""
        if self._bulk is None:
            self._bulk = await bulk(self._make) if self._make is not None else self._q()
        return dict(await bulk(self._bulk.contacts, state=state, cursor=cursor, count=count))

    async def set_suppression_lists(self, names: list[str]) -> None:
        await asyncio.to_thread(self._q().set_suppression_lists, names)


class Queues:
    """One `Queue` per campaign (a pool of `POOL` connections each), for the API."""

    POOL = 4

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._queues: dict[str, tuple[str, Queue]] = {}
        self._revision: dict[str, int] = {}

    async def of(self, campaign: dict[str, Any]) -> Queue:
        cid = campaign["id"]
        held = self._queues.get(cid)
        if held is None or held[0] != campaign["created_at"]:  # new, or deleted and created again
            q = await Queue.open(self.redis_url, cid, partitions=campaign["partitions"],
                                 max_attempts=campaign["max_attempts"], retry_delay_s=campaign["retry_delay_s"],
                                 retry_on=campaign["retry_on"], pool=self.POOL)
            self._queues[cid] = held = (campaign["created_at"], q)
            self._revision[cid] = campaign["revision"]
        elif self._revision.get(cid) != campaign["revision"]:
            await held[1].configure(max_attempts=campaign["max_attempts"], retry_delay_s=campaign["retry_delay_s"],
                                    retry_on=campaign["retry_on"])
            self._revision[cid] = campaign["revision"]
        return held[1]

    def forget(self, cid: str) -> None:
        self._queues.pop(cid, None)
        self._revision.pop(cid, None)

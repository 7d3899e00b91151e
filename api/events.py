"""Server-Sent Events: a campaign's events, and the agent screens' records.

Events are entries of the campaign's event stream (`store.campaigns`), written in the same
script or pipeline as the change they report; their stream ids are the SSE ids, so a client that
reconnects with `Last-Event-ID` misses nothing that is still kept (the last ~10,000).

Each API process reads Redis once for all its clients: `CampaignFeed` follows the streams of
every campaign somebody listens to in one blocking read, and `AgentFeed` the agents' changes;
a client first replays what it asked for from the stream, then takes what the feed hands it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request

from pacer.cdr import sleep_or_stop
from store import Store
from store.errors import StoreError

log = logging.getLogger("dialer.api")

BLOCK_MS = 500
KEEPALIVE_S = 15.0
#: Events a listener may have waiting; a listener that falls this far behind is let go (its
#: EventSource reconnects with Last-Event-ID and reads the rest from the stream).
BACKLOG = 1_000
REPLAY_PAGE = 500


def _frame(entry_id: str, fields: dict[str, str]) -> str:
    return f"id: {entry_id}\nevent: {fields.get('type', 'message')}\ndata: {fields.get('data', '{}')}\n\n"


class Listener:
    """One SSE client of a campaign's events: what the feed hands it waits here."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue(BACKLOG)
        self.behind = False

    def put(self, entry: tuple[str, dict[str, str]]) -> None:
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.behind = True


class CampaignFeed:
    """One reader of the event streams of every campaign somebody listens to, for the whole API
    process: one blocking XREAD over all their streams, its entries handed to each listener of
    that campaign, instead of a Redis connection and a blocking read per SSE client."""

    RETRY_S = 1.0

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._listeners: dict[str, set[Listener]] = {}
        #: campaign -> the id the feed has read it up to.
        self._last: dict[str, str] = {}
        self._wake = asyncio.Event()

    def listen(self, cid: str, after: str) -> Listener:
        """A new listener of `cid`, which has read everything up to `after` itself (the feed reads
        the campaign from there if it did not follow it yet)."""
        listener = Listener()
        self._listeners.setdefault(cid, set()).add(listener)
        self._last.setdefault(cid, after)
        self._wake.set()
        return listener

    def leave(self, cid: str, listener: Listener) -> None:
        listening = self._listeners.get(cid)
        if listening is not None:
            listening.discard(listener)
            if not listening:
                del self._listeners[cid]
                self._last.pop(cid, None)

    async def run(self, stop: asyncio.Event) -> None:
        store = Store(self.redis_url, max_connections=1)
        try:
            while not stop.is_set():
                if not self._last:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                try:
                    got = await store.campaigns.events_of(dict(self._last), block_ms=BLOCK_MS, count=REPLAY_PAGE)
                except StoreError as e:
                    log.warning("campaign events: %s (again in %.0f s)", e, self.RETRY_S)
                    await sleep_or_stop(stop, self.RETRY_S)
                    continue
                for cid, entries in got.items():
                    if cid not in self._last or not entries:
                        continue  # nobody listens any more
                    self._last[cid] = entries[-1][0]
                    for listener in self._listeners.get(cid, ()):
                        for entry in entries:
                            listener.put(entry)
        finally:
            await store.close()


def _after(a: str, b: str) -> bool:
    """Is stream id `a` after `b`?"""
    am, _, asq = a.partition("-")
    bm, _, bsq = b.partition("-")
    return (int(am), int(asq or 0)) > (int(bm), int(bsq or 0))


async def stream(request: Request, store: Store, feed: CampaignFeed, cid: str, start: str) -> AsyncIterator[str]:
    """Yield SSE frames from after `start` (a stream id, or `$` for only new events) until the
    client goes away, the server stops, or the client falls `BACKLOG` events behind."""
    stopping: asyncio.Event = request.app.state.stopping
    # Pin "now" to an id once, before the client hears anything: a bare `$` would skip what
    # arrives meanwhile.
    last = await store.campaigns.newest_event(cid) if start == "$" else start
    yield "retry: 2000\n\n"
    listener: Listener | None = None
    try:
        while True:
            # What is kept after `last`, page by page; once caught up, listen to the feed and read
            # the stream once more (whatever came between that read and the listening), after
            # which the feed's entries follow on without a gap (repeats are skipped by id).
            page = await store.campaigns.events_range(cid, last, REPLAY_PAGE)
            if page:
                last = page[-1][0]
                yield "".join(_frame(i, f) for i, f in page)
                continue
            if listener is not None:
                break
            listener = feed.listen(cid, last)
        idle = 0.0
        while not stopping.is_set() and not listener.behind and not await request.is_disconnected():
            try:
                entry_id, fields = await asyncio.wait_for(listener.queue.get(), 1.0)
            except TimeoutError:
                idle += 1.0
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                continue
            idle = 0.0
            frames = []
            for i, f in [(entry_id, fields), *_drain(listener)]:
                if _after(i, last):
                    last = i
                    frames.append(_frame(i, f))
            if frames:
                yield "".join(frames)
    finally:
        if listener is not None:
            feed.leave(cid, listener)


def _drain(listener: Listener) -> list[tuple[str, dict[str, str]]]:
    out = []
    while not listener.queue.empty():
        out.append(listener.queue.get_nowait())
    return out


class AgentFeed:
    """One reader of the agents' change stream for the whole API process: each agent screen's
    event stream waits on it instead of asking Redis for its agent's record every few hundred
    milliseconds. A change wakes the streams of that agent; they read the record once."""

    RETRY_S = 1.0

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def watch(self, agent: str) -> asyncio.Event:
        ev = asyncio.Event()
        self._waiters.setdefault(agent, set()).add(ev)
        return ev

    def unwatch(self, agent: str, ev: asyncio.Event) -> None:
        waiting = self._waiters.get(agent)
        if waiting is not None:
            waiting.discard(ev)
            if not waiting:
                del self._waiters[agent]

    def _wake(self, agent: str | None = None) -> None:
        for a, waiting in self._waiters.items():
            if agent is None or a == agent:
                for ev in waiting:
                    ev.set()

    async def run(self, stop: asyncio.Event) -> None:
        store = Store(self.redis_url, max_connections=1)
        try:
            while not stop.is_set():
                try:
                    last = await store.agents.newest_change()
                    self._wake()  # (again) following: whatever changed meanwhile is read once
                    while not stop.is_set():
                        for entry_id, agent in await store.agents.changes_after(last, block_ms=BLOCK_MS, count=500):
                            last = entry_id
                            self._wake(agent)
                except StoreError as e:
                    log.warning("agent changes: %s (again in %.0f s)", e, self.RETRY_S)
                    await sleep_or_stop(stop, self.RETRY_S)
        finally:
            await store.close()

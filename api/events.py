"""A campaign's event stream as Server-Sent Events, and the feed of agent changes that wakes the
agent screens' streams.

Events are entries of the campaign's event stream (`store.campaigns`), written in the same
script or pipeline as the change they report; their stream ids are the SSE ids, so a client that
reconnects with `Last-Event-ID` misses nothing that is still kept (the last ~10,000).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request

from store import Store
from store.errors import StoreError

log = logging.getLogger("dialer.api")

BLOCK_MS = 1_000
KEEPALIVE_S = 15.0


async def stream(request: Request, redis_url: str, cid: str, start: str) -> AsyncIterator[str]:
    """Yield SSE frames from `start` (a stream id, or `$` for only new events) until the client
    goes away or the server stops."""
    # A blocking read holds its connection: each listener gets its own, closed when it leaves.
    store = Store(redis_url, max_connections=1)
    stopping = request.app.state.stopping
    last = start
    idle = 0.0
    try:
        if last == "$":
            # Pin "now" to an id once: a bare `$` on every read would skip what arrives between reads.
            last = await store.campaigns.newest_event(cid)
        yield "retry: 2000\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            entries = await store.campaigns.events_after(cid, last, block_ms=BLOCK_MS, count=200)
            if not entries:
                idle += BLOCK_MS / 1000
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                continue
            idle = 0.0
            frames = []
            for entry_id, fields in entries:
                last = entry_id
                frames.append(f"id: {entry_id}\nevent: {fields.get('type', 'message')}\ndata: {fields.get('data', '{}')}\n\n")
            yield "".join(frames)
    finally:
        await store.close()


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
                    try:
                        await asyncio.wait_for(stop.wait(), self.RETRY_S)
                    except TimeoutError:
                        pass
        finally:
            await store.close()

"""A campaign's event stream as Server-Sent Events.

Events are entries of the campaign's event stream (`store.campaigns`), written in the same
script or pipeline as the change they report; their stream ids are the SSE ids, so a client that
reconnects with `Last-Event-ID` misses nothing that is still kept (the last ~10,000).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from store import Store

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

"""The pacer's view of one campaign: its settings and state, kept current from Redis, and the
live figures it writes back for the API.

`CampaignFollower.run()` reads the campaign's event stream with a blocking XREAD (half a second
at most), so a change made through the API (pacing, settings, pause, stop) reaches the pacer
well within a second; it also re-reads the record every few seconds in case an event was
trimmed away. `apply_pacing` hands the pacing settings to a `PacingEngine`; `write_live`
publishes the engine's estimates, which `GET /v1/campaigns/{id}/pacing` and `/stats` show while
they are fresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import dialer_core
import redis.asyncio as aioredis

from pacer.keys import api_key, events_key, live_key
from pacer.redis_async import connect

log = logging.getLogger("dialer.pacer")

BLOCK_MS = 500
RESYNC_S = 5.0
LIVE_TTL_S = 5


@dataclass(frozen=True)
class CampaignView:
    """One revision of a campaign as the pacer needs it."""

    id: str
    state: str
    revision: int
    spec: dict[str, Any]

    @property
    def mode(self) -> str:
        return str(self.spec["mode"])

    @property
    def pacing(self) -> dict[str, Any]:
        return dict(self.spec["pacing"])


async def load(redis: aioredis.Redis, cid: str) -> CampaignView | None:
    raw = cast(dict[str, str], await redis.hgetall(api_key(cid)))
    if not raw or "state" not in raw:
        return None
    return CampaignView(id=cid, state=raw["state"], revision=int(raw["revision"]), spec=json.loads(raw["spec"]))


def apply_pacing(engine: dialer_core.PacingEngine, view: CampaignView) -> bool:
    """Give the engine the campaign's mode and pacing settings; True if anything changed."""
    wanted = {"mode": view.mode, **view.pacing}
    current = dict(engine.config())
    if all(current.get(k) == v for k, v in wanted.items()):
        return False
    engine.configure(**wanted)
    return True


class CampaignFollower:
    """Calls `on_change(view)` with every new revision of the campaign (and `None` if it is
    deleted) until `stop` is set."""

    def __init__(self, redis_url: str, cid: str, on_change: Callable[[CampaignView | None], None]) -> None:
        self.redis_url = redis_url
        self.cid = cid
        self.on_change = on_change
        self.view: CampaignView | None = None

    async def run(self, stop: asyncio.Event) -> None:
        # A blocking XREAD holds its connection: this follower has its own.
        redis = connect(self.redis_url)
        key = events_key(self.cid)
        try:
            newest = cast(list[tuple[str, Any]], await redis.xrevrange(key, count=1))
            last = newest[0][0] if newest else "0-0"
            await self._sync(redis)
            since_sync = 0.0
            while not stop.is_set():
                got = await redis.xread({key: last}, block=BLOCK_MS, count=100)
                entries = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], got)
                if entries:
                    last = entries[-1][1][-1][0]
                since_sync += BLOCK_MS / 1000 if not entries else 0.0
                if entries or since_sync >= RESYNC_S:
                    since_sync = 0.0
                    await self._sync(redis)
        finally:
            await redis.aclose()

    async def _sync(self, redis: aioredis.Redis) -> None:
        view = await load(redis, self.cid)
        if view is None:
            if self.view is not None:
                self.view = None
                self.on_change(None)
            return
        if self.view is None or view.revision != self.view.revision:
            self.view = view
            self.on_change(view)


async def write_live(redis: aioredis.Redis, cid: str, figures: dict[str, Any]) -> None:
    """Publish the pacer's live figures for the API; they expire `LIVE_TTL_S` after the last write,
    so a pacer that died shows as none."""
    await redis.set(live_key(cid), json.dumps(figures), ex=LIVE_TTL_S)


def live_figures(engine: dialer_core.PacingEngine, *, cps: float, decisions: int) -> dict[str, Any]:
    """The engine's estimates in the shape the API and /metrics read."""
    s = engine.stats()
    return {
        **s,
        "abandon_rate": s["window_abandon_rate"],
        "calls_in_progress": s["calls_ringing"] + s["calls_waiting"] + s["calls_connected"],
        "cps": cps,
        "decisions": decisions,
    }

"""The runtime's view of one campaign: its settings and state, kept current from the store, and
the live figures it writes back for the API.

`CampaignFollower.run()` reads the campaign's event stream with a blocking read (half a second
at most), so a change made through the API (pacing, settings, pause, stop) reaches the runtime
well within a second; it also re-reads the record every few seconds in case an event was
trimmed away. A Redis outage is waited out (logged, retried every second), never the end of the
runner. `apply_pacing` hands the pacing settings to a `PacingEngine`; `live_figures` are the
engine's estimates, which `GET /v1/campaigns/{id}/pacing` and `/stats` show while fresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import dialer_core

from pacer.cdr import sleep_or_stop
from store import Store
from store.campaigns import CampaignView
from store.errors import StoreError

log = logging.getLogger("dialer.pacer")

BLOCK_MS = 500
RESYNC_S = 5.0
RETRY_S = 1.0


def partition_share(pacing: dict[str, Any], partition: int, partitions: int) -> dict[str, Any]:
    """Partition `partition`'s part of a campaign's pacing caps, each partition being dialled by
    an engine of its own: `max_cps / partitions`, and `max_channels` split so that the parts add
    up to it (the first `max_channels % partitions` partitions get one more; at least one each,
    which the API's check that `max_channels >= partitions` makes exact). The other settings
    (targets, ratios) hold for every partition as they are."""
    out = dict(pacing)
    if partitions > 1:
        if out.get("max_cps") is not None:
            out["max_cps"] = float(out["max_cps"]) / partitions
        if out.get("max_channels") is not None:
            whole, extra = divmod(int(out["max_channels"]), partitions)
            out["max_channels"] = max(1, whole + (1 if partition < extra else 0))
    return out


def apply_pacing(engine: dialer_core.PacingEngine, view: CampaignView, partition: int = 0) -> bool:
    """Give the engine the campaign's mode and partition `partition`'s share of its pacing
    settings (`partition_share`); True if anything changed."""
    wanted = {"mode": view.mode, **partition_share(view.pacing, partition, int(view.spec.get("partitions", 1)))}
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
        # A blocking read holds its connection: this follower has its own.
        store = Store(self.redis_url, max_connections=2)
        try:
            while not stop.is_set():
                try:
                    await self._follow(store, stop)
                except StoreError as e:
                    log.warning("campaign %s: following its changes: %s (again in %.0f s)", self.cid, e, RETRY_S)
                    await sleep_or_stop(stop, RETRY_S)
        finally:
            await store.close()

    async def _follow(self, store: Store, stop: asyncio.Event) -> None:
        last = await store.campaigns.newest_event(self.cid)
        await self._sync(store)
        since_sync = 0.0
        while not stop.is_set():
            entries = await store.campaigns.events_after(self.cid, last, block_ms=BLOCK_MS, count=100)
            if entries:
                last = entries[-1][0]
            since_sync += BLOCK_MS / 1000 if not entries else 0.0
            if entries or since_sync >= RESYNC_S:
                since_sync = 0.0
                await self._sync(store)

    async def _sync(self, store: Store) -> None:
        view = await store.campaigns.view(self.cid)
        if view is None:
            if self.view is not None:
                self.view = None
                self.on_change(None)
            return
        if self.view is None or view.revision != self.view.revision:
            self.view = view
            self.on_change(view)


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

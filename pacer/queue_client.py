"""The one adapter between asyncio and the Rust call queue.

`dialer_core.CallQueue` is synchronous and releases the GIL while it talks to Redis; this
adapter runs each call in the default executor so the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import dialer_core


class QueueClient:
    """Async face of one campaign's `CallQueue`."""

    def __init__(self, queue: dialer_core.CallQueue) -> None:
        self._queue = queue

    @property
    def campaign(self) -> str:
        return self._queue.campaign

    async def claim(self, n: int, *, partition: int = 0, lease_s: float = 60.0, with_attrs: bool = False,
                    agents: list[str] | None = None) -> list[dialer_core.Claim]:
        return await asyncio.to_thread(self._queue.claim, n, partition=partition, lease_s=lease_s, with_attrs=with_attrs,
                                       agents=agents)

    async def complete(
        self, items: Iterable[dialer_core.Completion | tuple[dialer_core.Claim, str] | tuple[str, int, str]]
    ) -> list[dialer_core.CompleteResult]:
        batch = list(items)
        return await asyncio.to_thread(self._queue.complete, batch)

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._queue.stats)

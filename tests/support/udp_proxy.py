"""A UDP fault proxy on loopback: forwards between one client and one server, dropping a share of
the datagrams each way (seeded, so a run can be replayed)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import cast

Addr = tuple[str, int]


@dataclass
class Stats:
    forwarded: int = 0
    dropped: int = 0


@dataclass
class LossyProxy:
    server: Addr
    loss: float
    seed: int = 1
    stats: Stats = field(default_factory=Stats)

    async def start(self) -> Addr:
        loop = asyncio.get_running_loop()
        self.rng = random.Random(self.seed)
        self.client: Addr | None = None
        proxy = self

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Addr) -> None:  # from the client
                proxy.client = addr
                proxy._forward(proxy.back, data, proxy.server)

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Addr) -> None:  # from the server
                if proxy.client is not None:
                    proxy._forward(proxy.front, data, proxy.client)

        front, _ = await loop.create_datagram_endpoint(Front, local_addr=("127.0.0.1", 0))
        back, _ = await loop.create_datagram_endpoint(Back, local_addr=("127.0.0.1", 0))
        self.front = cast(asyncio.DatagramTransport, front)
        self.back = cast(asyncio.DatagramTransport, back)
        return cast(Addr, self.front.get_extra_info("sockname")[:2])

    def _forward(self, via: asyncio.DatagramTransport, data: bytes, to: Addr) -> None:
        if self.rng.random() < self.loss:
            self.stats.dropped += 1
            return
        self.stats.forwarded += 1
        via.sendto(data, to)

    def close(self) -> None:
        self.front.close()
        self.back.close()

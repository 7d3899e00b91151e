"""Malformed SIP from the peer is dropped and counted, and never stops the gateway."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import uvloop

from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp

GOOD_HEAD = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\n"
             b"To: <sip:b@h>;tag=2\r\nCall-ID: nobody@h\r\nCSeq: 1 INVITE\r\n")
TORTURE = [
    os.urandom(300),
    b"\x00" * 64,
    b"SIP/2.0 2000 OK\r\n\r\n",
    b"INVITE sip:x SIP/2.0\r\n\r\n",  # no Via, From, To ...
    GOOD_HEAD + b"Content-Length: 999\r\n\r\nshort",
    GOOD_HEAD.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE") + b"\r\n",
    GOOD_HEAD + b"Bad Header Line\r\n\r\n",
    b"SIP/2.0 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n",
    GOOD_HEAD.replace(b"From", "Fr\u00f6m".encode("latin-1")) + b"\r\n",
]
STRAY = GOOD_HEAD + b"Content-Length: 0\r\n\r\n"  # well-formed, for a call we never placed


def test_torture_datagrams_are_dropped_and_counted_while_calls_go_on(tmp_path: Path) -> None:
    sipp = Sipp("uas", 20, tmp_path).start()

    async def main() -> tuple[list[Outcome | None], int, int]:
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for _ in range(5):
                for d in [*TORTURE, STRAY]:
                    try:
                        attacker.sendto(d, uac.cfg.local)
                    except OSError:
                        pass  # the 70 kB one is over a datagram's size: the kernel refuses it
            results = await asyncio.gather(*(uac.call(f"849{i}", hold_s=0.05) for i in range(20)))
        await asyncio.sleep(0.05)
        c = uac.counters
        uac.close()
        return [r.outcome for r in results], c.malformed, c.stray

    outcomes, malformed, stray = uvloop.run(main())
    assert outcomes == [Outcome.ANSWERED] * 20
    assert malformed == 5 * (len(TORTURE) - 1), "every torture datagram that arrived was dropped and counted"
    assert stray == 5
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()

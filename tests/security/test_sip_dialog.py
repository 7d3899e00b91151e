"""In-dialog requests belong to a call only if they come from its trunk and carry its dialog
(RFC 3261 12.2.2): a live call answered by sipp is attacked over real sockets while it talks, by
someone who saw its messages (Call-ID, tags and CSeq read off the wire). Each forged request is
refused - 481 for the wrong tags, 500 for a CSeq from the past, nothing at all for the wrong
source - the call stays up, no keypress reaches the IVR (a keypress sends a real SMS), and the
subscriber's own BYE still ends it. Before, a request was routed by Call-ID alone: any BYE hung
the call up, any INFO `Signal=1` was a keypress."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from sip_gateway.call import CallState, TrunkConfig
from sip_gateway.errors import SipParseError
from sip_gateway.message import Request, Response, parse
from sip_gateway.outcomes import CallResult, Outcome
from sip_gateway.uac import CallHooks, Uac
from tests.support.sipp import Sipp

#: How long the subscriber talks after its OPTIONS (the attacks happen meanwhile).
HOLD_MS = 1500
#: Another address of this host: the attacker who is not the trunk (Linux routes 127/8 to lo).
ELSEWHERE = "127.0.0.2"


class Tapped(Uac):
    """The real UAC; `seen` is what an eavesdropper on the path saw arrive (after it was handled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Request | Response] = []

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        super().received(data, addr)
        try:
            self.seen.append(parse(data))
        except SipParseError:
            pass


@dataclass
class Live:
    """A call answered by sipp and what the attacker knows of it."""

    uac: Tapped
    sipp: Sipp
    call_id: str
    #: The far end's requests: From is the 200's To (its tag), To is our From (our tag).
    far_from: str
    far_to: str
    our_tag: str
    their_tag: str
    uri: str
    result: asyncio.Future[CallResult]
    keys: list[str] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)

    def attacker(self, host: str = "127.0.0.1") -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        s.setblocking(False)
        self.sockets.append(s)
        return s

    def request(self, method: str, cseq: int, *, from_tag: str | None = None, to_tag: str | None = None,
                body: str = "", content_type: str | None = None) -> bytes:
        far_from = self.far_from.replace(self.their_tag, from_tag) if from_tag is not None else self.far_from
        far_to = self.far_to.replace(self.our_tag, to_tag) if to_tag is not None else self.far_to
        lines = [f"{method} {self.uri} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{os.urandom(6).hex()}",
                 f"From: {far_from}", f"To: {far_to}", f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}",
                 "Max-Forwards: 70"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    async def send(self, s: socket.socket, data: bytes) -> None:
        """Send and wait until the UAC has handled the datagram."""
        before = self.uac.counters.received
        s.sendto(data, self.uac.cfg.local)
        await until(lambda: self.uac.counters.received > before, "the UAC to receive the attack")

    async def reply(self, s: socket.socket) -> Response:
        got: list[bytes] = []

        def arrived() -> bool:
            try:
                got.append(s.recv(65536))
            except BlockingIOError:
                return False
            return True

        await until(arrived, "an answer to the attack")
        msg = parse(got[0])
        assert isinstance(msg, Response)
        return msg

    async def no_reply(self, s: socket.socket) -> None:
        await asyncio.sleep(0.1)  # an absence: an answer would have been sent in the same callback
        with pytest.raises(BlockingIOError):
            s.recv(65536)

    def still_up(self) -> None:
        c = self.uac.calls.get(self.call_id)
        assert c is not None and c.state is CallState.CONFIRMED, "the call is still up"
        assert not self.result.done()


async def until(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"waited {timeout:g} s for {what}"
        await asyncio.sleep(0.002)


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Sipp]:
    s = Sipp("uas_hangs_up.xml", 1, tmp_path, {"hold_ms": str(HOLD_MS)}).start()
    yield s
    s.stop()


def attack(sipp: Sipp, caplog: pytest.LogCaptureFixture, plan: Callable[[Live], Awaitable[None]]) -> Live:
    """Place a call to sipp, run `plan` against it once the far end's OPTIONS (CSeq 10) has been
    answered, then let sipp's BYE end it. Checks that nothing raised and nothing was logged."""
    caplog.set_level(logging.WARNING, logger="sip_gateway")

    async def main() -> tuple[Live, list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, ctx: errors.append(ctx))
        uac = await Tapped.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        keys: list[str] = []
        hooks = CallHooks(answered=lambda c: None, dtmf=lambda _, key: keys.append(key))
        result = asyncio.ensure_future(uac.call("84901000001", hooks=hooks))
        try:
            await until(lambda: any(isinstance(m, Request) and m.method == "OPTIONS" for m in uac.seen),
                        "sipp's OPTIONS in the dialog")
            ok = next(m for m in uac.seen if isinstance(m, Response) and m.status == 200 and m.cseq[1] == "INVITE")
            our, their = ok.from_tag, ok.to_tag
            assert our and their
            c = uac.calls[ok.call_id]
            live = Live(uac, sipp, ok.call_id, far_from=ok.get("To") or "", far_to=ok.get("From") or "",
                        our_tag=our, their_tag=their, uri=c.contact.strip("<>"), result=result, keys=keys)
            try:
                await plan(live)
                await asyncio.wait_for(asyncio.shield(result), HOLD_MS / 1000 + 10)
            finally:
                for s in live.sockets:
                    s.close()
            return live, errors
        finally:
            result.cancel()
            uac.close()

    live, errors = uvloop.run(main())
    r = live.result.result()
    assert r.outcome is Outcome.ANSWERED and r.answered_at is not None and r.ended_at is not None, r
    # sipp's pause timer ticks in whole ms and our times are kept to the ms: 1.499 s was seen. A
    # forged BYE obeyed would end the call within milliseconds of the attack, long before this.
    assert r.ended_at - r.answered_at >= 0.9 * HOLD_MS / 1000, "ended by the subscriber's BYE, not before"
    assert sipp.wait() == 0, sipp.errors()  # sipp's BYE was answered 200
    assert errors == []
    assert [rec.getMessage() for rec in caplog.records] == []
    return live


def test_a_bye_with_wrong_tags_is_refused_481(sipp: Sipp, caplog: pytest.LogCaptureFixture) -> None:
    async def plan(live: Live) -> None:
        s = live.attacker()  # the trunk's host, another port: only the tags tell it apart
        for tags in ({"to_tag": "forged"}, {"from_tag": "forged"}, {"to_tag": ""}):
            await live.send(s, live.request("BYE", 11, **tags))
            assert (await live.reply(s)).status == 481
            live.still_up()
        # No tags at all (RFC 2543 style) does not match a dialog that has them.
        await live.send(s, live.request("BYE", 11).replace(f";tag={live.our_tag}".encode(), b""))
        assert (await live.reply(s)).status == 481
        live.still_up()
        assert live.uac.counters.rejected_dialog == 4

    attack(sipp, caplog, plan)


def test_a_bye_from_another_address_is_dropped(sipp: Sipp, caplog: pytest.LogCaptureFixture) -> None:
    async def plan(live: Live) -> None:
        s = live.attacker(ELSEWHERE)
        await live.send(s, live.request("BYE", 11))  # the right tags and the next CSeq: the wrong source
        await live.no_reply(s)
        live.still_up()
        assert live.uac.counters.rejected_source == 1

    attack(sipp, caplog, plan)


def test_an_info_keypress_from_another_address_is_not_delivered(sipp: Sipp, caplog: pytest.LogCaptureFixture) -> None:
    async def plan(live: Live) -> None:
        press = {"body": "Signal=1\r\nDuration=160\r\n", "content_type": "application/dtmf-relay"}
        s = live.attacker(ELSEWHERE)
        await live.send(s, live.request("INFO", 11, **press))
        await live.no_reply(s)
        # From the trunk's host with the wrong tags: 481.
        near = live.attacker()
        await live.send(near, live.request("INFO", 11, to_tag="forged", **press))
        assert (await live.reply(near)).status == 481
        live.still_up()
        assert live.keys == [], "no keypress reached the IVR"
        assert (live.uac.counters.rejected_source, live.uac.counters.rejected_dialog) == (1, 1)

    live = attack(sipp, caplog, plan)
    assert live.keys == []


def test_a_request_with_a_lower_cseq_is_refused_500(sipp: Sipp, caplog: pytest.LogCaptureFixture) -> None:
    async def plan(live: Live) -> None:
        s = live.attacker()  # an old BYE replayed: the right tags, a CSeq below the far end's 10
        await live.send(s, live.request("BYE", 9))
        assert (await live.reply(s)).status == 500
        await live.send(s, live.request("INFO", 3, body="Signal=1\r\n", content_type="application/dtmf-relay"))
        assert (await live.reply(s)).status == 500
        live.still_up()
        assert live.keys == []
        assert live.uac.counters.rejected_cseq == 2

    live = attack(sipp, caplog, plan)
    assert live.keys == []

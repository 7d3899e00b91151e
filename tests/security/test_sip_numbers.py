"""Numbers in SIP are ASCII digits, nothing else: a peer writing '²' or '٣' where a number goes
(Content-Length, CSeq, Retry-After, a port) has its message dropped and counted, and no call is
lost to it. `str.isdigit()` is true for '²' while `int('²')` raises: before, that ValueError left
the parser (an unhandled exception a datagram) or, in a 503's Retry-After, the handling of a live
call after its waiter was gone (the call never returned)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from sip_gateway.call import TrunkConfig
from sip_gateway.errors import SipParseError
from sip_gateway.message import Request, ascii_int, host_port, parse
from sip_gateway.uac import Uac

HEAD = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\n"
        "To: <sip:b@h>;tag=2\r\nCall-ID: c@h\r\n")


@pytest.mark.parametrize("header", ["Content-Length: \u00b2", "Content-Length: \u0663", "CSeq: \u0663 INVITE",
                                    "Content-Length: 99999999999999999999"])
def test_non_ascii_numbers_are_a_parse_error(header: str) -> None:
    cseq = "" if header.startswith("CSeq") else "CSeq: 1 INVITE\r\n"
    with pytest.raises(SipParseError):
        parse((HEAD + cseq + header + "\r\n\r\n").encode())


def test_ascii_int_and_ports() -> None:
    assert ascii_int("42") == 42 and ascii_int("\u00b2") is None and ascii_int("\u0663") is None
    assert ascii_int("1" * 11) is None and ascii_int("") is None and ascii_int(None) is None
    assert host_port("sip:b@h:5080") == ("h", 5080) and host_port("sip:b@h") == ("h", 5060)
    for bad in ("sip:b@h:\u00b2", "sip:b@h:99999", "sip:b@[::1]:x"):
        with pytest.raises(SipParseError):
            host_port(bad)


class Carrier(asyncio.DatagramProtocol):
    """A carrier on a raw UDP socket that answers each INVITE with what `answer` writes."""

    def __init__(self, answer: Callable[[Request], list[str]]) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse(data)
        if isinstance(msg, Request) and msg.method == "INVITE":
            assert self.transport is not None
            for text in self.answer(msg):
                self.transport.sendto(text.encode(), addr)


def response(req: Request, status: str, *extra: str) -> str:
    lines = [f"SIP/2.0 {status}", f"Via: {req.get('Via')}", f"From: {req.get('From')}",
             f"To: {req.get('To')};tag=t1", f"Call-ID: {req.call_id}", f"CSeq: {req.get('CSeq')}", *extra]
    if not any(x.startswith("Content-Length") for x in extra):
        lines.append("Content-Length: 0")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_a_503_with_a_superscript_retry_after_ends_its_call_and_the_trunk_goes_on() -> None:
    async def main() -> tuple[list[Any], int, list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, ctx: errors.append(ctx))

        def answer(req: Request) -> list[str]:
            # A forged final with a non-ASCII length first (dropped), then the 503 with '²'.
            return [response(req, "200 OK", "Content-Length: \u00b2"), response(req, "503 Service Unavailable",
                                                                              "Retry-After: \u00b2")]

        transport, _ = await loop.create_datagram_endpoint(lambda: Carrier(answer), local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        uac = await Uac.open(TrunkConfig(trunk=("127.0.0.1", port), local=("127.0.0.1", 0)))
        try:
            results = [await asyncio.wait_for(uac.call("84901000001"), 10)]
            results.append(await asyncio.wait_for(uac.call("84901000002"), 10))  # the trunk still works
            return [r.code for r in results], uac.counters.malformed, errors
        finally:
            uac.close()
            transport.close()

    codes, malformed, errors = uvloop.run(main())
    assert codes == [503, 503]
    assert malformed == 2  # the two forged 200s
    assert errors == []

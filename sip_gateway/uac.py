"""The UAC on asyncio (uvloop in the service): one UDP socket, or one TCP connection to the trunk,
and every call's state machine behind it.

`Uac.call(number)` places a call and returns its `CallResult` once the call has ended. Datagrams
are stamped with the loop's monotonic time where they arrive and routed by Call-ID to their call,
which lets them act only from its trunk and in its dialog (`dialog.py`); each call has one timer
handle at its earliest deadline. Malformed datagrams, and messages a call refuses, are dropped
(or answered 481/500) and counted, never raised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import ssl
import weakref
from dataclasses import dataclass
from collections.abc import Callable
from typing import ClassVar, cast

from sip_gateway.call import CallIds, CallState, OutboundCall, TrunkConfig
from sip_gateway.dialog import Note
from sip_gateway.errors import NotPlaced, SipParseError
from sip_gateway.message import MAX_MESSAGE, Request, Response, parse
from sip_gateway.orphans import Ending
from sip_gateway.outcomes import CallResult
from sip_gateway.rate import RateLimit
from sip_gateway.transaction import Addr, Send

log = logging.getLogger(__name__)

#: Socket send and receive buffers (bytes): forced past rmem_max when we may (root).
SOCKET_BUFFER = 8 * 1024 * 1024


@dataclass(frozen=True)
class CallHooks:
    """What a call's owner (the IVR, agent connect) is told while the call runs."""

    #: The call was answered (a 2xx ACKed, not one that crossed our CANCEL).
    answered: Callable[[OutboundCall], None]
    #: A DTMF key came by SIP INFO: (call id, key).
    dtmf: Callable[[str, str], None] = lambda call_id, key: None
    #: The call was placed (its INVITE is about to leave): the owner may hang it up from now on.
    placed: Callable[[OutboundCall], None] = lambda call: None


@dataclass
class Counters:
    calls: int = 0
    received: int = 0
    malformed: int = 0
    #: Parsed, but handling it raised (dropped, logged).
    failed: int = 0
    #: For no call of ours (Call-ID), or for none of its transactions (a response).
    stray: int = 0
    #: Refused by its call (`dialog.Note`): from another host than the trunk (dropped), not the
    #: dialog's tags or the dialog ended (481), a CSeq from the past (500).
    rejected_source: int = 0
    rejected_dialog: int = 0
    rejected_cseq: int = 0
    #: Requests from the far end seen before: answered again, acted on once.
    retransmissions: int = 0
    #: Forked 2xx (another To tag) ACKed and hung up.
    forks: int = 0
    sent: int = 0
    send_errors: int = 0

    def note(self, note: Note) -> None:
        setattr(self, note.value, getattr(self, note.value) + 1)


class Uac(asyncio.DatagramProtocol):
    #: The UACs of this process (`/metrics` reads their counters at scrape time).
    running: ClassVar[weakref.WeakSet[Uac]] = weakref.WeakSet()

    def __init__(self, cfg: TrunkConfig, limit: RateLimit | None = None) -> None:
        self.cfg = cfg
        self.limit = limit or RateLimit()
        self.counters = Counters()
        Uac.running.add(self)
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, OutboundCall] = {}
        # One timer per call, armed at a deadline: kept when the call's next deadline is later
        # (it fires, finds nothing due, and re-arms), replaced only when it is earlier.
        self.timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self.waiters: dict[str, asyncio.Future[CallResult]] = {}
        self.holds: dict[str, float] = {}
        self.hooks: dict[str, CallHooks] = {}
        #: Calls placed outside the trunk's rate limit (to agents' phones).
        self.unlimited: set[str] = set()
        self.loop = asyncio.get_running_loop()
        self.stream: asyncio.Transport | None = None
        #: A dead dialer's calls being ended (`end`), by Call-ID, with their timers and waiters.
        self.endings: dict[str, tuple[Ending, asyncio.Future[str]]] = {}
        self.ending_timers: dict[str, asyncio.TimerHandle] = {}

    @classmethod
    async def open(cls, cfg: TrunkConfig, limit: RateLimit | None = None) -> Uac:
        """UDP: bind the local address (port 0: any free one; `cfg.local` is then updated).
        TCP: connect to the trunk (`cfg.local` becomes the connection's own address); TLS: the
        same, with the trunk's certificate verified."""
        loop = asyncio.get_running_loop()
        if cfg.transport in ("TCP", "TLS"):
            uac = cls(cfg, limit)
            ctx = ssl.create_default_context(cafile=cfg.tls_ca) if cfg.transport == "TLS" else None
            name = (cfg.tls_server_name or cfg.domain or cfg.trunk[0]) if ctx is not None else None
            stream, _ = await loop.create_connection(lambda: TcpFraming(uac), cfg.trunk[0], cfg.trunk[1], ssl=ctx,
                                                     server_hostname=name)
            uac.stream = stream
            host, port = stream.get_extra_info("sockname")[:2]
            uac.cfg = dataclasses.replace(cfg, local=(host, port))
            return uac
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.local[0] else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        # Thousands of calls a second come back in bursts: a default-sized receive buffer
        # (~200 kB) overflows, and every lost response costs a retransmission and a call.
        for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # 33/32: *BUFFORCE
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        sock.bind(cfg.local)
        transport, proto = await loop.create_datagram_endpoint(lambda: cls(cfg, limit), sock=sock)
        bound = transport.get_extra_info("sockname")
        if bound and bound[1] != cfg.local[1]:
            proto.cfg = dataclasses.replace(cfg, local=(cfg.local[0], bound[1]))
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def close(self) -> None:
        for _, h in self.timers.values():
            h.cancel()
        for h in self.ending_timers.values():
            h.cancel()
        if self.transport is not None:
            self.transport.close()
        if self.stream is not None:
            self.stream.close()

    async def call(self, number: str, hold_s: float | None = None, media: Addr | None = None,
                   hooks: CallHooks | None = None, cfg: TrunkConfig | None = None, limited: bool = True,
                   admit: Callable[[], bool] | None = None, ids: CallIds | None = None) -> CallResult:
        """Dial `number`; if answered, hang up after `hold_s` seconds (None: when the far end
        does, or `hangup`). `media`: where our RTP is received (the SDP offer's address);
        `hooks`: told of the answer and of DTMF sent by SIP INFO; `cfg`: this call's settings
        (a campaign's caller ID and ring timeout; or another destination, such as an agent's
        phone). Waits first for the trunk's rate limit (CPS, channels, a 503's Retry-After)
        unless `limited` is False (calls to agents' phones do not use the trunk); then, if
        `admit()` says no, raises `NotPlaced` and sends nothing. `ids`: the call's Call-ID, tag and
        branches, derived (`CallIds`; random by default). Returns when the call has ended."""
        if limited:
            while (again := self.limit.admit(self.loop.time())) is not None:
                await asyncio.sleep(max(0.0, again - self.loop.time()))
        if admit is not None and not admit():
            if limited:
                self.limit.release()
            raise NotPlaced(f"call to {number} not placed: refused at the last moment")
        now = self.loop.time()
        c = OutboundCall(number, cfg or self.cfg, now, media, ids)
        if not limited:
            self.unlimited.add(c.call_id)
        if hooks is not None:
            self.hooks[c.call_id] = hooks
            hooks.placed(c)
        self.calls[c.call_id] = c
        fut: asyncio.Future[CallResult] = self.loop.create_future()
        self.waiters[c.call_id] = fut
        if hold_s is not None:
            self.holds[c.call_id] = hold_s
        self.counters.calls += 1
        self._apply(c, c.start(now))
        return await fut

    def end(self, endings: list[Ending]) -> list[asyncio.Future[str]]:
        """Send a dead dialer's CANCELs and BYEs (`orphans.py`) now and run them to their answers:
        futures of what became of each call, in order. A Call-ID already in hand (ours, or being
        ended) is left alone."""
        futs: list[asyncio.Future[str]] = []
        for e in endings:
            fut: asyncio.Future[str] = self.loop.create_future()
            futs.append(fut)
            if e.call_id in self.calls or e.call_id in self.endings or e.finished:
                fut.set_result(e.outcome or "not ended: already in hand")
                continue
            self.endings[e.call_id] = (e, fut)
            self._apply_ending(e, e.start(self.loop.time()))
        return futs

    def _apply_ending(self, e: Ending, sends: list[Send]) -> None:
        self._send(sends)
        h = self.ending_timers.pop(e.call_id, None)
        if h is not None:
            h.cancel()
        if e.finished:
            _, fut = self.endings.pop(e.call_id)
            if not fut.done():
                fut.set_result(e.outcome)
            return
        deadline = e.deadline
        if deadline is not None:
            self.ending_timers[e.call_id] = self.loop.call_at(deadline, self._on_ending_timer, e.call_id)

    def _on_ending_timer(self, call_id: str) -> None:
        self.ending_timers.pop(call_id, None)
        found = self.endings.get(call_id)
        if found is not None:
            self._apply_ending(found[0], found[0].on_timer(self.loop.time()))

    def hangup(self, call_id: str) -> None:
        c = self.calls.get(call_id)
        if c is not None:
            self._apply(c, c.hangup(self.loop.time()))

    def hangup_all(self) -> int:
        """End every call in progress (CANCEL the ringing, BYE the answered); how many."""
        ids = [call_id for call_id, c in self.calls.items() if not c.finished]
        for call_id in ids:
            self.hangup(call_id)
        return len(ids)

    # --- asyncio callbacks -----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.received(data, addr)

    def received(self, data: bytes, addr: Addr) -> None:
        """One SIP message from the network (a datagram, or one framed off the TCP stream). A
        message that cannot be parsed is dropped and counted; one that makes its handling fail
        (a bug the parser let through) is counted apart and logged, and never leaves the
        transport's callback: the other calls go on."""
        now = self.loop.time()
        self.counters.received += 1
        if not data.strip():
            return  # keep-alive
        try:
            msg = parse(data)
        except SipParseError as e:
            self.counters.malformed += 1
            log.debug("dropped a malformed datagram from %s: %s", addr, e)
            return
        try:
            self._handle(msg, addr, now)
        except (SipParseError, ValueError, KeyError, IndexError, TypeError, UnicodeError) as e:
            self.counters.failed += 1
            log.warning("a message from %s could not be handled (dropped): %r", addr, e, exc_info=True)

    def _handle(self, msg: Request | Response, addr: Addr, now: float) -> None:
        c = self.calls.get(msg.call_id)
        if c is None:
            ending = self.endings.get(msg.call_id)
            if ending is not None:
                self._apply_ending(ending[0], ending[0].on_message(msg, addr[:2], now))
            else:
                self.counters.stray += 1
            return
        answered_before = c.result.answered_at is not None
        try:
            sends = c.on_message(msg, addr[:2], now)
        finally:
            for note, why in c.notes:
                self.counters.note(note)
                log.debug("call %s: %s (%s)", c.call_id, note.value, why)
            c.notes.clear()
        self._apply(c, sends)
        newly_answered = not answered_before and c.result.answered_at is not None
        hold = self.holds.pop(c.call_id, None) if newly_answered else None
        if hold is not None:
            self.loop.call_at(now + hold, self.hangup, c.call_id)
        hooks = self.hooks.get(c.call_id)
        if hooks is not None:
            if newly_answered and not c.finished and c.state is CallState.CONFIRMED:
                hooks.answered(c)
            while c.info_digits:
                hooks.dtmf(c.call_id, c.info_digits.pop(0))

    def error_received(self, exc: Exception) -> None:
        self.counters.send_errors += 1
        log.debug("transport error: %s", exc)

    # --- internals -------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        """The TCP connection to the trunk closed: every call on it has failed."""
        now = self.loop.time()
        for c in list(self.calls.values()):
            c.transport_error(now, f"connection to the trunk lost ({exc or 'closed'})")
            self._apply(c, [])

    def _send(self, sends: list[Send]) -> None:
        if self.stream is not None:
            for s in sends:
                self.stream.write(s.data)  # one connection: in-dialog requests go on it too
        elif self.transport is not None:
            for s in sends:
                self.transport.sendto(s.data, s.addr)
        self.counters.sent += len(sends)

    def _apply(self, c: OutboundCall, sends: list[Send]) -> None:
        self._send(sends)
        if c.finished:
            fut = self.waiters.pop(c.call_id, None)
            if fut is not None and not fut.done():
                if c.call_id in self.unlimited:
                    self.unlimited.discard(c.call_id)
                else:
                    self.limit.release()
                    if c.result.code == 503:
                        self.limit.overloaded(self.loop.time(), c.retry_after)
                fut.set_result(c.result)
        deadline = c.deadline
        armed = self.timers.get(c.call_id)
        if deadline is None:
            if armed is not None:
                armed[1].cancel()
                del self.timers[c.call_id]
            if c.finished:
                self.calls.pop(c.call_id, None)
                self.holds.pop(c.call_id, None)
                self.hooks.pop(c.call_id, None)
        elif armed is None or deadline < armed[0]:
            if armed is not None:
                armed[1].cancel()
            self.timers[c.call_id] = (deadline, self.loop.call_at(deadline, self._on_timer, c.call_id))

    def _on_timer(self, call_id: str) -> None:
        self.timers.pop(call_id, None)
        c = self.calls.get(call_id)
        if c is None:
            return
        now = self.loop.time()
        deadline = c.deadline
        self._apply(c, c.on_timer(now) if deadline is not None and now >= deadline else [])


_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.I | re.M)


class TcpFraming(asyncio.Protocol):
    """Cuts the TCP byte stream into SIP messages (RFC 3261 18.3: Content-Length is mandatory on
    a stream). A stream that cannot be framed is closed."""

    def __init__(self, uac: Uac) -> None:
        self.uac = uac
        self.buf = bytearray()
        self.peer: Addr = uac.cfg.trunk

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")[:2]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            while self.buf[:2] == b"\r\n":
                del self.buf[:2]  # keep-alives between messages
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_MESSAGE:
                    self._give_up("no end of headers within 64 kB")
                return
            m = _CONTENT_LENGTH.search(bytes(self.buf[:end]))
            if m is None:
                self._give_up("a message without Content-Length on a stream")
                return
            total = end + 4 + int(m.group(1))
            if total > MAX_MESSAGE:
                self._give_up(f"a message of {total} bytes")
                return
            if len(self.buf) < total:
                return
            message = bytes(self.buf[:total])
            del self.buf[:total]
            self.uac.received(message, self.peer)

    def _give_up(self, why: str) -> None:
        self.uac.counters.malformed += 1
        log.warning("closing the TCP connection to %s: %s", self.peer, why)
        self.buf.clear()
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.uac.connection_lost(exc)

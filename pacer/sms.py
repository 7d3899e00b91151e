"""SMS after a call (the seed's "press 1" thank-you), over SMPP 3.4, at most once per subscriber
per campaign, ever.

`store.sms.request()` records the request and queues it in one Lua script: the subscriber's
entry in the campaign's SMS hash is created only if absent (HSETNX), and only then is the
message put in the campaign's outbox stream. Asking twice sends once.

`SmsSender` (run by `dialer serve --smsc ...`) binds to the SMSC as a transceiver with
`smpp34` and sends the outboxes, at most `window` messages in flight. Each message's state:
    queued -> sending -> sent -> delivered            (a delivery receipt came back)
                      -> retry (the SMSC refused: sent again after `retry_delay_s`, up to
                                `max_attempts`, then failed)
                      -> unknown (the connection broke while the SMSC had it: it may have been
                                  delivered, so it is never sent again)
"sending" is written before the submit_sm leaves: a sender killed mid-submit leaves "sending",
which the next sender turns into "unknown" rather than risking a second message. A refusal
(any command_status but 0) is certain, so it is retried. Every final state goes to the CDR
archive as a record of kind "sms".

Redis failing is waited out: each write of a message's state is tried again for up to
`WRITE_RETRY_S`, and a message the SMSC has is never submitted again because Redis lost what
was written about it. The sender remembers for `RECENT_S` the messages it finished (their
final state is written back if Redis lost it, and the entry acknowledged, when the entry comes
back or is requested again) and the ones it submitted; its own "sending" state (it names the
sender) on a message it never submitted is sent, not turned into "unknown".

The keys are the store's (`store/sms.py`, `store/keys.py`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import smpp34

from pacer.cdr import sleep_or_stop
from store import Store
from store.errors import Refused, Slow, Unavailable, Unreachable
from store.sms import FINAL

log = logging.getLogger("dialer.sms")

REBIND_AFTER: Final = 50
#: A write of a message's state that fails (Redis unreachable) is tried again for this long.
WRITE_RETRY_S: Final = 300.0
#: How long the sender remembers the messages it finished and the ones it submitted.
RECENT_S: Final = 600.0


def refusal_status(e: Exception) -> int | None:
    """The command_status of an SMSC's negative answer, which smpp34 raises as
    `SmppError("ESME_RTHROTTLED (0x00000058)")`; None for an error that is not an answer."""
    m = re.search(r"\(0x([0-9a-fA-F]{8})\)", str(e))
    return int(m.group(1), 16) if m else None


def encode(text: str) -> tuple[bytes, int]:
    """The message body and its data_coding: the SMSC default alphabet (0) for ASCII text, UCS-2
    (8) otherwise (Vietnamese needs it)."""
    if text.isascii():
        return text.encode("ascii"), 0
    return text.encode("utf-16-be"), 8


@dataclass(frozen=True)
class SmscConfig:
    host: str
    port: int
    system_id: str
    password: str = ""
    window: int = 10
    max_attempts: int = 5
    retry_delay_s: float = 30.0
    receipts: bool = True

    @classmethod
    def parse(cls, address: str, system_id: str, password: str = "", **kw: Any) -> SmscConfig:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"SMSC address {address!r}: expected host:port")
        return cls(host=host, port=int(port), system_id=system_id, password=password, **kw)


class SmsSender:
    """Sends the SMS outboxes through one SMPP session, reconnecting when it breaks."""

    def __init__(self, redis_url: str, smsc: SmscConfig, *, consumer: str | None = None) -> None:
        self.redis_url = redis_url
        self.smsc = smsc
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.counts: dict[str, int] = {}
        self._session: smpp34.Smsc | None = None
        self._client: smpp34.Client | None = None
        self._in_flight = 0
        self._refusals = 0
        self._slots = asyncio.Condition()
        self._campaigns: dict[str, asyncio.Task[None]] = {}
        self._receipt_queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(maxsize=10_000)
        self._early: dict[str, tuple[str, float]] = {}
        self._receipt_tasks: set[asyncio.Task[None]] = set()
        #: (campaign, number) -> (when, final state, detail) of the messages finished here lately.
        self._recent: collections.OrderedDict[tuple[str, str], tuple[float, str, str]] = collections.OrderedDict()
        #: (campaign, number) of the messages submitted here and not finished yet.
        self._submitted: set[tuple[str, str]] = set()
        #: ... and of those being sent now (an entry delivered twice is sent once).
        self._sending: set[tuple[str, str]] = set()

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def run(self, stop: asyncio.Event) -> None:
        self.store = store = Store(self.redis_url)
        sms = store.sms
        receipts: asyncio.Task[None] | None = None
        # Receipts are matched by a few workers: each may wait for our record of its message id.
        self._receipt_tasks = {asyncio.create_task(self._receipt_worker()) for _ in range(8)}
        try:
            while not stop.is_set():
                if self._session is None:
                    session = await self._bind()
                    if session is None:
                        await sleep_or_stop(stop, 2.0)
                        continue
                    receipts = asyncio.create_task(self._receipts(session, stop))
                try:
                    for cid in await sms.campaigns():
                        if cid not in self._campaigns or self._campaigns[cid].done():
                            self._campaigns[cid] = asyncio.create_task(self._outbox(cid, stop))
                    await self._sweep_early()
                except Unreachable as e:
                    log.warning("SMS sender: %s", e)
                await sleep_or_stop(stop, 1.0)
        finally:
            # The outboxes see `stop` within one blocking read; cancelling one in the middle of a
            # Redis command would leave its connection unusable.
            if self._campaigns:
                await asyncio.wait(self._campaigns.values(), timeout=5.0)
            for t in self._campaigns.values():
                t.cancel()
            await asyncio.gather(*self._campaigns.values(), return_exceptions=True)
            if receipts is not None:
                receipts.cancel()  # waits in session.next(), outside Redis
                await asyncio.gather(receipts, return_exceptions=True)
            for _ in self._receipt_tasks:
                await self._receipt_queue.put(None)
            await asyncio.gather(*self._receipt_tasks, return_exceptions=True)
            await self._unbind()
            await store.close()

    async def _bind(self) -> smpp34.Smsc | None:
        c = self.smsc
        client = smpp34.Client(c.host, c.port, c.system_id, c.password, bind_type="TRX", window_size=c.window)
        try:
            session = await client.connect()
        except Exception as e:  # smpp34 raises its own and OSError subclasses; all mean: not bound
            log.warning("SMS sender: cannot bind to the SMSC at %s:%d: %s", c.host, c.port, e)
            return None
        self._session, self._client = session, client
        addrs = {ai[4][0] for ai in await asyncio.get_running_loop().getaddrinfo(c.host, c.port)}
        tuned = await asyncio.to_thread(nodelay, lambda local, remote: remote[1] == c.port and remote[0] in addrs)
        log.info("SMS sender bound to the SMSC at %s:%d as %s (TCP_NODELAY set on %d socket(s))", c.host, c.port,
                 c.system_id, tuned)
        return session

    async def _unbind(self) -> None:
        session, client, self._session, self._client = self._session, self._client, None, None
        for close in ((session.unbind if session else None), (client.stop if client else None)):
            if close is not None:
                try:
                    await close()
                except (smpp34.SmppError, OSError) as e:  # already gone: nothing to close
                    log.debug("SMS sender: closing the session: %s", e)

    async def _outbox(self, cid: str, stop: asyncio.Event) -> None:
        try:
            await self._drain(cid, stop)
        except (Unavailable, Slow, Refused) as e:
            log.warning("SMS sender, campaign %s: %s (again in a second)", cid, e)

    async def _drain(self, cid: str, stop: asyncio.Event) -> None:
        sms = self.store.sms
        await sms.ensure_group(cid)
        retry_ms = int(self.smsc.retry_delay_s * 1000)
        last_claim = 0.0
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set() and self._session is not None:
                # A steady flow, not batch-and-wait: a message is read as soon as one in flight ends.
                async with self._slots:
                    await self._slots.wait_for(lambda: self._in_flight < self.smsc.window)
                free = self.smsc.window - self._in_flight
                entries: list[tuple[str, dict[str, str]]] = []
                if time.monotonic() - last_claim >= min(self.smsc.retry_delay_s, 5.0):
                    # Refused earlier and due again, or left by a sender that died.
                    last_claim = time.monotonic()
                    entries = await sms.reclaim(cid, self.consumer, retry_ms, free)
                if not entries:
                    entries = await sms.read(cid, self.consumer, free, 500)
                for entry_id, fields in entries:
                    self._in_flight += 1
                    t = asyncio.create_task(self._send(cid, entry_id, fields))
                    tasks.add(t)
                    t.add_done_callback(self._sent)
                    t.add_done_callback(tasks.discard)
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("SMS sender: %s", task.exception())
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._slots:
            self._slots.notify_all()

    async def _written(self, write: Callable[[], Any]) -> Any:
        """`await write()`, tried again while Redis is unreachable (up to `WRITE_RETRY_S`)."""
        give_up = time.monotonic() + WRITE_RETRY_S
        delay = 0.1
        while True:
            try:
                return await write()
            except Unreachable as e:
                if time.monotonic() >= give_up:
                    raise
                log.debug("SMS sender: Redis: %s (again in %.1f s)", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _send(self, cid: str, entry_id: str, fields: dict[str, str]) -> None:
        number, text, sender = fields["number"], fields["text"], fields.get("sender", "")
        key = (cid, number)
        if key in self._sending:
            return  # delivered twice (Redis lost its acknowledgement): the one in progress sends it
        done = self._recent.get(key)
        if done is not None:
            # Finished here, and Redis lost it (or it was requested again after a loss): its
            # final state is written back, the entry acknowledged, nothing sent.
            _, st, detail = done
            await self._written(lambda: self.store.sms.set_state(cid, number, st, detail))
            await self._written(lambda: self.store.sms.ack(cid, entry_id))
            return
        self._sending.add(key)
        try:
            await self._send_new(cid, entry_id, number, text, sender)
        finally:
            self._sending.discard(key)

    async def _send_new(self, cid: str, entry_id: str, number: str, text: str, sender: str) -> None:
        key = (cid, number)
        state = await self._written(lambda: self.store.sms.state(cid, number))
        if state is not None and state[0] in FINAL:
            await self._written(lambda: self.store.sms.ack(cid, entry_id))  # done before: never twice
            return
        attempt = int(state[1]) + 1 if state is not None and state[0] == "retry" else 1
        if state is not None and state[0] == "sending":
            mine = state[1].endswith("@" + self.consumer)
            if not mine or key in self._submitted:
                # A sender died (or this one lost its answer) while the SMSC had it: it may have gone out.
                await self._final(cid, entry_id, number, "unknown", "sender stopped mid-submit")
                return
            # This sender wrote "sending" and never submitted it (Redis failed in between): it never left.
            attempt = int(state[1].split("@", 1)[0] or 1)
        session = self._session
        if session is None:
            return  # not bound: stays pending, comes back after the retry delay
        await self._written(lambda: self._set(cid, number, "sending", f"{attempt}@{self.consumer}"))
        body, coding = encode(text)
        self._submitted.add(key)
        try:
            resp = await session.submit_sm(
                number.lstrip("+"), body, source_addr=sender, source_addr_ton=5, source_addr_npi=0,
                dest_addr_ton=1, dest_addr_npi=1, data_coding=coding, registered_delivery=1 if self.smsc.receipts else 0,
            )
        except smpp34.SmppError as e:
            status = refusal_status(e)
            if status is None:  # no answer from the SMSC: the PDU may be there
                log.warning("SMS to %s: submit_sm failed without an answer (%s): not sent again", number, e)
                await self._final(cid, entry_id, number, "unknown", f"no answer: {e}")
                await self._unbind()
                return
            await self._refused(cid, entry_id, number, attempt, status)
            return
        except Exception as e:  # the session broke with the PDU possibly at the SMSC
            log.warning("SMS to %s: session broke during submit_sm (%s): not sent again", number, e)
            await self._final(cid, entry_id, number, "unknown", f"session broke: {e}")
            await self._unbind()
            return
        if resp.is_success:
            self._refusals = 0
            msg_id = resp.message_id or ""
            # "sent" first: a receipt is matched only through IDS, so it cannot be overwritten.
            await self._final(cid, entry_id, number, "sent", msg_id)
            if msg_id:
                await self._written(lambda: self.store.sms.remember_id(msg_id, cid, number))
                early = self._early.pop(msg_id, None)
                if early is not None:
                    await self._receipt_queue.put((msg_id, early[0]))
        else:
            await self._refused(cid, entry_id, number, attempt, resp.command_status)

    async def _refused(self, cid: str, entry_id: str, number: str, attempt: int, status: int) -> None:
        """The SMSC answered no: certain, so sent again after the retry delay (the entry stays
        pending), until `max_attempts`."""
        self._refusals += 1
        self._submitted.discard((cid, number))  # certain: it did not go out
        if self._refusals >= REBIND_AFTER and self._session is not None:
            # Everything refused for a while: the session is sick (seen with smpp34 after bursts
            # of receipts: every submit_sm then answers ESME_RSYSERR). A fresh bind cures it.
            log.warning("SMS sender: %d refusals in a row; binding again", self._refusals)
            self._refusals = 0
            await self._unbind()
        if attempt < self.smsc.max_attempts:
            await self._written(lambda: self._set(cid, number, "retry", str(attempt)))
            self._count("refused")
        else:
            await self._final(cid, entry_id, number, "failed", f"command_status 0x{status:08x} x{attempt}")

    async def _set(self, cid: str, number: str, state: str, detail: str) -> None:
        await self.store.sms.set_state(cid, number, state, detail)

    async def _final(self, cid: str, entry_id: str, number: str, state: str, detail: str) -> None:
        """Record a final state, its CDR, and acknowledge the outbox entry: one round trip.
        Remembered first, for `RECENT_S`: if Redis loses it, it is written back, never sent again."""
        key, now = (cid, number), time.monotonic()
        self._recent[key] = (now, state, detail)
        self._recent.move_to_end(key)
        self._submitted.discard(key)
        while self._recent and next(iter(self._recent.values()))[0] < now - RECENT_S:
            self._recent.popitem(last=False)
        await self._written(lambda: self.store.sms.final(cid, entry_id, number, state, detail))
        self._count(state)

    async def _receipts(self, session: smpp34.Smsc, stop: asyncio.Event) -> None:
        """Delivery receipts: `id:<message id> ... stat:DELIVRD` (or UNDELIV, EXPIRED, REJECTD ...)."""
        while not stop.is_set():
            ev = await session.next()
            if isinstance(ev, smpp34.Disconnected):
                if self._session is session:
                    log.warning("SMS sender: the SMSC closed the session")
                    await self._unbind()
                return
            m = re.search(rb"id:(\S+).*stat:(\w+)", ev.short_message)
            if not (ev.esm_class & 0x04) or m is None:
                continue
            await self._receipt_queue.put((m.group(1).decode(), m.group(2).decode()))

    async def _sweep_early(self) -> None:
        """Receipts parked for a while: their message went out from another process (its record
        is in Redis by now), or they are not ours (dropped after a minute)."""
        now = time.monotonic()
        for msg_id, (stat, since) in list(self._early.items()):
            if now - since < 2.0:
                continue
            if await self.store.sms.known_id(msg_id):
                del self._early[msg_id]
                await self._receipt_queue.put((msg_id, stat))
            elif now - since > 60.0:
                del self._early[msg_id]
                log.warning("SMS sender: delivery receipt for unknown message id %s dropped", msg_id)

    async def _receipt_worker(self) -> None:
        while (item := await self._receipt_queue.get()) is not None:
            msg_id, stat = item
            try:
                await self._receipt(msg_id, stat)
            except (Unavailable, Slow, Refused) as e:
                log.warning("SMS sender: receipt for %s not recorded: %s", msg_id, e)

    async def _receipt(self, msg_id: str, stat: str) -> None:
        status = await self.store.sms.receipt(msg_id, stat)
        if status is None:
            # The receipt overtook our record of the message id (the SMSC may send it as soon as
            # it answers the submit_sm): park it; `_send` or the sweep picks it up.
            self._early.setdefault(msg_id, (stat, time.monotonic()))
            return
        self._count(status)


def nodelay(match: Callable[[tuple[Any, ...], tuple[Any, ...]], bool]) -> int:
    """Set TCP_NODELAY on this process's TCP sockets whose (local, peer) addresses `match`;
    answers how many. smpp34 (Rust, tokio) leaves Nagle's algorithm on and offers no option:
    with receipts flowing back, a submit_sm or deliver_sm_resp then waits for the peer's delayed
    ACK, and the sender ran 3.5 times slower (268 against 931 messages/s measured here). The
    sockets are found through /proc/self/fd (Linux); only the option is touched."""
    done = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for name in fds:
        try:
            s = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        try:
            if s.type == socket.SOCK_STREAM and s.family in (socket.AF_INET, socket.AF_INET6) \
                    and match(s.getsockname(), s.getpeername()):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                done += 1
        except OSError:
            pass
        finally:
            s.close()  # the duplicate only; the original stays open
    return done

"""RFC 3261 client transactions over UDP, sans-I/O: `(event, now) -> actions`, no sockets, no clock.

- `InviteClientTransaction` (17.1.1, with RFC 6026's Accepted state): Timer A retransmits the
  INVITE (T1, doubling) until a response; Timer B (64*T1) times out a call that got no response at
  all; a 300-699 final is ACKed by the transaction (same branch) and its retransmissions re-ACKed
  for Timer D (32 s); a 2xx goes to the TU (which ACKs it end to end), and its retransmissions too
  until Timer M (64*T1).
- `NonInviteClientTransaction` (17.1.2): CANCEL and BYE. Timer E retransmits (T1 doubling up to
  T2), Timer F (64*T1) times out, Timer K (T4) absorbs retransmitted finals.

The owner calls `on_timer(now)` when `now >= deadline` and sends what the actions say. Over a
reliable transport (`reliable=True`, TCP) nothing is retransmitted and Timers D and K are zero.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sip_gateway.message import Request, Response

T1 = 0.5
T2 = 4.0
T4 = 5.0
TIMER_B = 64 * T1
TIMER_D = 32.0
TIMER_F = 64 * T1
TIMER_K = T4
TIMER_M = 64 * T1
#: How long a UAS keeps the answer to a non-INVITE request over UDP, for its retransmissions
#: (RFC 3261 17.2.2; zero over a reliable transport). The call, as the far end's BYE's UAS, uses it.
TIMER_J = 64 * T1

Addr = tuple[str, int]


@dataclass(frozen=True)
class Send:
    data: bytes
    addr: Addr


@dataclass(frozen=True)
class Deliver:
    """A response for the transaction user."""

    response: Response


@dataclass(frozen=True)
class TimedOut:
    """Timer B or F fired: no final response."""


Action = Send | Deliver | TimedOut


class State(enum.Enum):
    CALLING = "calling"  # INVITE sent, nothing back (Trying for non-INVITE)
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class InviteClientTransaction:
    def __init__(self, invite: Request, addr: Addr, reliable: bool = False) -> None:
        #: Over a reliable transport (TCP) nothing is retransmitted and Timer D is 0.
        self.reliable = reliable
        self.request = invite
        self.addr = addr
        self.data = invite.encode()
        self.state = State.CALLING
        self.timer_a: float | None = None
        self.interval = T1
        self.timer_b: float | None = None
        self.timer_d: float | None = None  # D in Completed, M in Accepted
        self.ack: bytes | None = None

    @property
    def branch(self) -> str:
        return self.request.branch

    @property
    def deadline(self) -> float | None:
        times = [t for t in (self.timer_a, self.timer_b, self.timer_d) if t is not None]
        return min(times) if times else None

    def start(self, now: float) -> list[Action]:
        self.timer_a = None if self.reliable else now + T1
        self.timer_b = now + TIMER_B
        return [Send(self.data, self.addr)]

    def on_response(self, resp: Response, now: float) -> list[Action]:
        s = self.state
        if s in (State.CALLING, State.PROCEEDING):
            if resp.status < 200:
                self.state = State.PROCEEDING
                self.timer_a = None
                return [Deliver(resp)]
            self.timer_a = self.timer_b = None
            if resp.status < 300:
                self.state = State.ACCEPTED
                self.timer_d = now + TIMER_M
                return [Deliver(resp)]
            self.state = State.COMPLETED
            self.timer_d = now + (0.0 if self.reliable else TIMER_D)
            self.ack = self._ack(resp).encode()
            return [Send(self.ack, self.addr), Deliver(resp)]
        if s is State.ACCEPTED and 200 <= resp.status < 300:
            return [Deliver(resp)]  # a retransmitted 2xx: the TU ACKs it again
        if s is State.COMPLETED and resp.status >= 300 and self.ack is not None:
            return [Send(self.ack, self.addr)]  # a retransmitted final: ACK again, quietly
        return []

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.timer_b is not None and now >= self.timer_b and self.state is State.CALLING:
            self.state = State.TERMINATED
            self.timer_a = self.timer_b = None
            return [TimedOut()]
        if self.timer_a is not None and now >= self.timer_a:
            self.interval *= 2
            self.timer_a = now + self.interval
            out.append(Send(self.data, self.addr))
        if self.timer_d is not None and now >= self.timer_d:
            self.state = State.TERMINATED
            self.timer_d = None
        return out

    def _ack(self, resp: Response) -> Request:
        """RFC 3261 17.1.1.3: the ACK for a non-2xx final, on the INVITE's branch."""
        inv = self.request
        ack = Request(method="ACK", uri=inv.uri)
        ack.add("Via", inv.top_via)
        for route in inv.get_all("Route"):
            ack.add("Route", route)
        ack.add("From", inv.get("From") or "")
        ack.add("To", resp.get("To") or inv.get("To") or "")
        ack.add("Call-ID", inv.call_id)
        ack.add("CSeq", f"{inv.cseq[0]} ACK")
        ack.add("Max-Forwards", "70")
        return ack


class NonInviteClientTransaction:
    def __init__(self, request: Request, addr: Addr, reliable: bool = False) -> None:
        self.reliable = reliable
        self.request = request
        self.addr = addr
        self.data = request.encode()
        self.state = State.CALLING
        self.timer_e: float | None = None
        self.interval = T1
        self.timer_f: float | None = None
        self.timer_k: float | None = None

    @property
    def branch(self) -> str:
        return self.request.branch

    @property
    def deadline(self) -> float | None:
        times = [t for t in (self.timer_e, self.timer_f, self.timer_k) if t is not None]
        return min(times) if times else None

    def start(self, now: float) -> list[Action]:
        self.timer_e = None if self.reliable else now + T1
        self.timer_f = now + TIMER_F
        return [Send(self.data, self.addr)]

    def on_response(self, resp: Response, now: float) -> list[Action]:
        if self.state in (State.CALLING, State.PROCEEDING):
            if resp.status < 200:
                self.state = State.PROCEEDING
                return [Deliver(resp)]
            self.state = State.COMPLETED
            self.timer_e = self.timer_f = None
            self.timer_k = now + (0.0 if self.reliable else TIMER_K)
            return [Deliver(resp)]
        return []

    def on_timer(self, now: float) -> list[Action]:
        if self.timer_f is not None and now >= self.timer_f:
            self.state = State.TERMINATED
            self.timer_e = self.timer_f = None
            return [TimedOut()]
        out: list[Action] = []
        if self.timer_e is not None and now >= self.timer_e:
            self.interval = T2 if self.state is State.PROCEEDING else min(self.interval * 2, T2)
            self.timer_e = now + self.interval
            out.append(Send(self.data, self.addr))
        if self.timer_k is not None and now >= self.timer_k:
            self.state = State.TERMINATED
            self.timer_k = None
        return out


ClientTransaction = InviteClientTransaction | NonInviteClientTransaction

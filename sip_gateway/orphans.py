"""Ending the calls of a dialer that died (sans-I/O): what a node taking its partition over
needs to hang them up, and the transaction that does it.

A dead node's INVITE left ringing is CANCELled: the CANCEL must carry the INVITE's Request-URI,
Call-ID, From (with its tag), To, CSeq number and top Via with its branch (RFC 3261 9.1). None
of it was written per call before the INVITE left: the node's `RunInfo` (written once, when it
took the partition) says how it built its INVITEs, and the call's Call-ID, tag and branch are
derived from the node's secret and the claim's token (`CallIds`). The CANCEL's Via is the dead
node's, with `rport`: the answer comes back to the address it was sent from (RFC 3581).

A dead node's answered call is ended with a BYE in its dialog (`SavedDialog`: written with the
call's answered mark) from our own address: a new transaction, our Via.

`Ending` runs those requests to their final answers (or Timer F), answers a BYE from the far end
that crosses ours, and says what happened, for the CDR.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from sip_gateway.call import CallIds, OutboundCall, TrunkConfig, new_id
from sip_gateway.dialog import host_key
from sip_gateway.message import Message, Request, Response
from sip_gateway.transaction import TIMER_F, Addr, Deliver, NonInviteClientTransaction, Send, State, TimedOut


@dataclass(frozen=True)
class RunInfo:
    """How one incarnation of a dialer places one partition's calls."""

    node: str
    secret: str  # hex
    host: str
    port: int
    transport: str
    domain: str
    caller_id: str
    trunk: Addr
    #: The trunk challenges (an INVITE may have been sent again with CSeq 2).
    auth: bool

    @classmethod
    def of(cls, node: str, secret: bytes, cfg: TrunkConfig) -> RunInfo:
        return cls(node=node, secret=secret.hex(), host=cfg.local[0], port=cfg.local[1], transport=cfg.transport,
                   domain=cfg.domain, caller_id=cfg.caller_id, trunk=cfg.trunk, auth=cfg.username is not None)

    def dumps(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> RunInfo:
        d: dict[str, Any] = json.loads(text)
        d["trunk"] = (str(d["trunk"][0]), int(d["trunk"][1]))
        return cls(**d)

    def ids(self, name: str) -> CallIds:
        return CallIds.derive(bytes.fromhex(self.secret), name, self.host)

    def cfg(self) -> TrunkConfig:
        return TrunkConfig(trunk=self.trunk, local=(self.host, self.port), domain=self.domain, caller_id=self.caller_id,
                           transport=self.transport)

    def cancels(self, name: str, number: str) -> list[Request]:
        """The CANCEL of the INVITE this incarnation sent for call `name` to `number` (the dial
        string): for a trunk that challenges, of both the first INVITE and the one with
        credentials (whichever is not pending is answered 481, harmlessly)."""
        call = OutboundCall(number, self.cfg(), 0.0, ids=self.ids(name))
        return [call.cancel_of(call.sent_invite(cseq)) for cseq in ((1, 2) if self.auth else (1,))]


@dataclass(frozen=True)
class SavedDialog:
    """An answered call's dialog as its answered mark keeps it: enough for a BYE."""

    call_id: str
    from_hdr: str
    remote_to: str
    remote_target: str
    route_set: list[str]
    next_hop: Addr
    #: The INVITE's CSeq (the BYE takes the next).
    cseq: int

    @classmethod
    def of(cls, call: OutboundCall) -> SavedDialog | None:
        d = call.dialog
        if d is None:
            return None
        return cls(call_id=call.call_id, from_hdr=call.from_hdr, remote_to=d.remote_to, remote_target=d.remote_target,
                   route_set=list(d.route_set), next_hop=d.next_hop, cseq=call.invite_cseq)

    def dumps(self) -> str:
        return json.dumps([self.call_id, self.from_hdr, self.remote_to, self.remote_target, self.route_set,
                           list(self.next_hop), self.cseq], separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> SavedDialog:
        c, f, t, u, r, h, s = json.loads(text)
        return cls(call_id=str(c), from_hdr=str(f), remote_to=str(t), remote_target=str(u),
                   route_set=[str(x) for x in r], next_hop=(str(h[0]), int(h[1])), cseq=int(s))

    def bye(self, local: Addr, transport: str) -> Request:
        """A BYE in the dialog, from `local` (our own Via: a new transaction of ours)."""
        r = Request(method="BYE", uri=self.remote_target)
        r.add("Via", f"SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bK{new_id()};rport")
        for route in self.route_set:
            r.add("Route", route)
        r.add("Max-Forwards", "70")
        r.add("From", self.from_hdr)
        r.add("To", self.remote_to)
        r.add("Call-ID", self.call_id)
        r.add("CSeq", f"{self.cseq + 1} BYE")
        return r


class Ending:
    """One orphaned call's CANCELs or BYE, each to its final answer or Timer F. The Uac routes
    the call's messages here by Call-ID; `outcome` says what became of it once `finished`."""

    def __init__(self, call_id: str, requests: list[tuple[Request, Addr]], reliable: bool, peers: set[str]) -> None:
        self.call_id = call_id
        self.txs = [NonInviteClientTransaction(r, addr, reliable) for r, addr in requests]
        self.reliable = reliable
        self.peers = peers
        self.method = requests[0][0].method if requests else ""
        self.answers: list[str] = []
        self.timeouts = 0
        self.outcome = ""
        self.finished = not requests

    def start(self, now: float) -> list[Send]:
        return [a for tx in self.txs for a in tx.start(now) if isinstance(a, Send)]

    @property
    def deadline(self) -> float | None:
        times = [t.deadline for t in self.txs if t.deadline is not None]
        return min(times) if times else None

    def on_message(self, msg: Message, addr: Addr, now: float) -> list[Send]:
        if not self.reliable and host_key(addr[0]) not in self.peers:
            return []
        if isinstance(msg, Response):
            for tx in self.txs:
                if tx.branch == msg.branch and tx.request.method == msg.cseq[1]:
                    for a in tx.on_response(msg, now):
                        if isinstance(a, Deliver) and a.response.status >= 200:
                            self.answers.append(f"{a.response.status} {a.response.reason}")
            self._settle()
            return []
        assert isinstance(msg, Request)
        if msg.method == "ACK":
            return []
        if msg.method == "BYE":  # the far end hung up too: that ends it as well
            self.outcome = f"{self.method} sent; the far end hung up (BYE)"
            self.finished = True
        status, reason = (200, "OK") if msg.method == "BYE" else (481, "Call/Transaction Does Not Exist")
        r = Response(status=status, reason=reason)
        for v in msg.get_all("Via"):
            r.add("Via", v)
        for name in ("From", "To", "Call-ID", "CSeq"):
            r.add(name, msg.get(name) or "")
        return [Send(r.encode(), addr)]

    def on_timer(self, now: float) -> list[Send]:
        out: list[Send] = []
        for tx in self.txs:
            if tx.deadline is not None and now >= tx.deadline:
                for a in tx.on_timer(now):
                    if isinstance(a, Send):
                        out.append(a)
                    elif isinstance(a, TimedOut):
                        self.timeouts += 1
        self._settle()
        return out

    def _settle(self) -> None:
        if self.finished:
            return
        if all(tx.state in (State.COMPLETED, State.TERMINATED) for tx in self.txs):
            self.finished = True
            said = [f"answered {', '.join(self.answers)}"] if self.answers else []
            if self.timeouts:
                said.append(f"no answer in {TIMER_F:g} s" if not self.answers else f"{self.timeouts} not answered")
            self.outcome = f"{self.method} sent, {'; '.join(said)}"

"""One outbound call as the UAC's transaction user (RFC 3261 sections 8, 9, 12, 13, 15), sans-I/O:
`start`, `on_message`, `on_timer`, `hangup` take `now` and return datagrams to send.

- INVITE through an `InviteClientTransaction`; provisional responses mark ringing.
- The ring timeout sends CANCEL (only once a provisional response came: RFC 3261 9.1); the 487
  that follows is a no-answer.
- A 2xx establishes the dialog (remote target from Contact, route set from Record-Route reversed)
  and is ACKed end to end, again for each retransmission. A 2xx that crosses our CANCEL is ACKed
  then hung up with BYE: an answered person is never left on a dead line.
- BYE through a `NonInviteClientTransaction`; a BYE from the far end is answered 200.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from sip_gateway import auth, sdp
from sip_gateway.errors import SipParseError
from sip_gateway.message import Message, Request, Response, host_port, uri_of
from sip_gateway.outcomes import CallResult, Outcome, outcome_of
from sip_gateway.transaction import (
    Addr,
    ClientTransaction,
    Deliver,
    InviteClientTransaction,
    NonInviteClientTransaction,
    Send,
    State,
    TimedOut,
)

MIN_RING_TIMEOUT_S = 15.0


def new_id(n: int = 8) -> str:
    return os.urandom(n).hex()


@dataclass(frozen=True)
class TrunkConfig:
    """Where calls go and how they present themselves."""

    trunk: Addr
    local: Addr
    domain: str = ""
    caller_id: str = "dialer"
    ring_timeout_s: float = 25.0
    #: The RTP port offered when a call has no media engine behind it (`Uac.call(media=None)`):
    #: 9, the discard port, as placeholder - port 0 would refuse the audio stream (RFC 3264).
    rtp_port: int = 9
    #: "UDP", "TCP" (one connection to the trunk, every call's messages on it) or "TLS" (the
    #: same over TLS; the trunk's certificate is verified against `tls_ca`, or the system's CAs).
    transport: str = "UDP"
    #: Digest credentials for a trunk that challenges (401/407).
    username: str | None = None
    password: str | None = None
    #: TLS: a CA file (PEM) to verify the trunk's certificate with, and the name it must carry
    #: (default: `domain`, else the trunk's host).
    tls_ca: str | None = None
    tls_server_name: str | None = None

    def __post_init__(self) -> None:
        if self.transport not in ("UDP", "TCP", "TLS"):
            raise ValueError(f"transport={self.transport!r}: expected UDP, TCP or TLS")
        if self.ring_timeout_s < MIN_RING_TIMEOUT_S:
            raise ValueError(f"ring_timeout_s={self.ring_timeout_s}: the ring timeout is never under {MIN_RING_TIMEOUT_S} s")


class CallState(enum.Enum):
    CALLING = "calling"
    RINGING = "ringing"
    CANCELLING = "cancelling"
    CONFIRMED = "confirmed"
    TERMINATING = "terminating"
    ENDED = "ended"


class OutboundCall:
    def __init__(self, number: str, cfg: TrunkConfig, now: float, media: Addr | None = None) -> None:
        self.cfg = cfg
        #: Where our RTP is received (the media engine's address and the call's port).
        self.media: Addr = media or (cfg.local[0], cfg.rtp_port)
        host, port = cfg.local
        domain = cfg.domain or cfg.trunk[0]
        self.call_id = f"{new_id()}@{host}"
        self.local_tag = new_id(4)
        self.uri = f"sip:{number}@{domain}"
        self.from_hdr = f'"{cfg.caller_id}" <sip:{cfg.caller_id}@{host}>;tag={self.local_tag}'
        self.to_hdr = f"<{self.uri}>"
        suffix = {"TCP": ";transport=tcp", "TLS": ";transport=tls"}.get(cfg.transport, "")
        self.contact = f"<sip:{cfg.caller_id}@{host}:{port}{suffix}>"
        self.cseq = 1
        self.state = CallState.CALLING
        self.result = CallResult(call_id=self.call_id, number=number, dialed_at=now)
        self.ring_deadline = now + cfg.ring_timeout_s
        self.cancel_wanted = False
        self.invite_tx: InviteClientTransaction | None = None
        self.txs: dict[str, ClientTransaction] = {}
        self.remote_target = ""
        self.route_set: list[str] = []
        self.remote_to = ""
        self.ack: tuple[bytes, Addr] | None = None
        #: The Retry-After of a 503 (the UAC pauses new calls for it).
        self.retry_after: str | None = None
        self.authenticated = False
        #: Our SDP offer (sent again, unchanged, in answer to a re-INVITE).
        self.offer = b""
        #: The SDP of the 2xx (the far end's media address and codecs).
        self.answer_sdp = b""
        #: DTMF keys received by SIP INFO and not yet taken by the transport.
        self.info_digits: list[str] = []

    # --- building requests -----------------------------------------------------------------

    def _request(self, method: str, uri: str, to: str, cseq: int, routes: list[str]) -> Request:
        host, port = self.cfg.local
        r = Request(method=method, uri=uri)
        r.add("Via", f"SIP/2.0/{self.cfg.transport} {host}:{port};branch=z9hG4bK{new_id()};rport")
        for route in routes:
            r.add("Route", route)
        r.add("Max-Forwards", "70")
        r.add("From", self.from_hdr)
        r.add("To", to)
        r.add("Call-ID", self.call_id)
        r.add("CSeq", f"{cseq} {method}")
        return r

    def _dialog_addr(self) -> Addr:
        target = uri_of(self.route_set[0]) if self.route_set else self.remote_target
        if not target:
            return self.cfg.trunk
        try:
            return host_port(target)
        except SipParseError:
            return self.cfg.trunk  # a target we cannot read: in-dialog requests go to the trunk

    def _run(self, tx: ClientTransaction, now: float) -> list[Send]:
        # Keyed by method and branch: a CANCEL shares its INVITE's branch (RFC 3261 9.1).
        self.txs[f"{tx.request.method}/{tx.branch}"] = tx
        return [a for a in tx.start(now) if isinstance(a, Send)]

    # --- events --------------------------------------------------------------------------

    def start(self, now: float) -> list[Send]:
        return self._invite(now, None)

    def _invite(self, now: float, credentials: tuple[str, str] | None) -> list[Send]:
        inv = self._request("INVITE", self.uri, self.to_hdr, self.cseq, [])
        if credentials is not None:
            inv.add(*credentials)
        inv.add("Contact", self.contact)
        inv.add("P-Asserted-Identity", f"<sip:{self.cfg.caller_id}@{self.cfg.local[0]}>")
        inv.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO")
        inv.add("Content-Type", "application/sdp")
        inv.body = self.offer = self.offer or sdp.offer(*self.media)
        self.invite_tx = InviteClientTransaction(inv, self.cfg.trunk, self.reliable)
        return self._run(self.invite_tx, now)

    @property
    def reliable(self) -> bool:
        return self.cfg.transport in ("TCP", "TLS")

    @property
    def deadline(self) -> float | None:
        times = [t.deadline for t in self.txs.values() if t.deadline is not None]
        if self.state in (CallState.CALLING, CallState.RINGING) and not self.cancel_wanted:
            times.append(self.ring_deadline)
        return min(times) if times else None

    @property
    def finished(self) -> bool:
        return self.state is CallState.ENDED

    def on_timer(self, now: float) -> list[Send]:
        out: list[Send] = []
        if self.state in (CallState.CALLING, CallState.RINGING) and now >= self.ring_deadline and not self.cancel_wanted:
            self.cancel_wanted = True
            if self.state is CallState.RINGING:
                out += self._cancel(now)
        for tx in list(self.txs.values()):
            if tx.deadline is not None and now >= tx.deadline:
                out += self._actions(tx, tx.on_timer(now), now)
        self._forget_done()
        return out

    def on_message(self, msg: Message, addr: Addr, now: float) -> list[Send]:
        if isinstance(msg, Response):
            tx = self.txs.get(f"{msg.cseq[1]}/{msg.branch}")
            out = self._actions(tx, tx.on_response(msg, now), now) if tx else self._stray(msg, now)
            self._forget_done()
            return out
        assert isinstance(msg, Request)
        if msg.method == "BYE":
            return self._on_bye(msg, addr, now)
        if msg.method == "INFO":
            return self._on_info(msg, addr)
        if msg.method == "OPTIONS":
            return [self._reply(msg, addr, 200, "OK")]
        if msg.method in ("INVITE", "UPDATE"):
            return self._on_refresh(msg, addr)
        if msg.method in ("ACK", "CANCEL"):
            return []  # the ACK of our 2xx to a re-INVITE; a CANCEL of a request we answered at once
        return [self._reply(msg, addr, 501, "Not Implemented")]

    def hangup(self, now: float) -> list[Send]:
        """End an answered call (BYE); before an answer, give up ringing (CANCEL)."""
        if self.state is CallState.CONFIRMED:
            return self._bye(now)
        if self.state in (CallState.CALLING, CallState.RINGING) and not self.cancel_wanted:
            self.ring_deadline = now
            return self.on_timer(now)
        return []

    # --- internals -----------------------------------------------------------------------

    def _actions(self, tx: ClientTransaction, actions: list[Send | Deliver | TimedOut], now: float) -> list[Send]:
        out: list[Send] = []
        for a in actions:
            if isinstance(a, Send):
                out.append(a)
            elif isinstance(a, Deliver):
                out += self._on_response(tx, a.response, now)
            elif isinstance(a, TimedOut):
                out += self._on_timeout(tx, now)
        return out

    def _forget_done(self) -> None:
        for key in [k for k, t in self.txs.items() if t.state is State.TERMINATED]:
            del self.txs[key]

    def _on_response(self, tx: ClientTransaction, resp: Response, now: float) -> list[Send]:
        if tx is not self.invite_tx:
            if resp.cseq[1] == "BYE" and resp.status >= 200:
                self._end(now)
            return []
        if resp.status < 200:
            if resp.status > 100 and self.result.ringing_at is None:
                self.result.ringing_at = now
            if self.state is CallState.CALLING:
                self.state = CallState.RINGING
                if self.cancel_wanted:
                    return self._cancel(now)
            return []
        if resp.status < 300:
            return self._on_2xx(resp, now)
        if resp.status in (401, 407) and not self.authenticated and self.cfg.username is not None:
            return self._authenticate(resp, now)
        r = self.result
        r.code, r.reason = resp.status, resp.reason
        self.retry_after = resp.get("Retry-After")
        r.outcome = outcome_of(resp.status, cancelled=self.state is CallState.CANCELLING)
        if r.outcome is Outcome.NO_ANSWER and self.state is CallState.CANCELLING:
            r.reason = f"ring timeout ({self.cfg.ring_timeout_s:g} s), {resp.status} {resp.reason}"
        self._end(now)
        return []

    def _on_2xx(self, resp: Response, now: float) -> list[Send]:
        if self.ack is not None:
            return [Send(*self.ack)]  # a retransmitted 2xx: ACK it again
        self.answer_sdp = resp.body
        self.remote_target = uri_of(resp.get("Contact") or "") or self.uri
        self.route_set = list(reversed(resp.get_all("Record-Route")))
        self.remote_to = resp.get("To") or self.to_hdr
        r = self.result
        r.answered_at = now
        r.code, r.reason = resp.status, resp.reason
        cancelled = self.state is CallState.CANCELLING
        r.outcome = outcome_of(resp.status, cancelled=cancelled)
        ack = self._request("ACK", self.remote_target, self.remote_to, self.invite_cseq, self.route_set)
        self.ack = (ack.encode(), self._dialog_addr())
        self.state = CallState.CONFIRMED
        out = [Send(*self.ack)]
        if cancelled:
            out += self._bye(now)
        return out

    def _authenticate(self, resp: Response, now: float) -> list[Send]:
        """Answer the trunk's challenge once: the INVITE again, CSeq + 1, with credentials."""
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        reply = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        challenge = resp.get(header)
        self.authenticated = True
        try:
            value = auth.authorization(challenge or "", "INVITE", self.uri, self.cfg.username or "", self.cfg.password or "")
        except ValueError as e:
            r = self.result
            r.code, r.reason, r.outcome = resp.status, f"cannot answer the challenge: {e}", Outcome.REJECTED
            self._end(now)
            return []
        self.cseq += 1
        self.state = CallState.CALLING
        return self._invite(now, (reply, value))

    @property
    def invite_cseq(self) -> int:
        return self.invite_tx.request.cseq[0] if self.invite_tx else 1

    def _cancel(self, now: float) -> list[Send]:
        assert self.invite_tx is not None
        inv = self.invite_tx.request
        c = Request(method="CANCEL", uri=inv.uri)
        c.add("Via", inv.top_via)
        for route in inv.get_all("Route"):
            c.add("Route", route)
        c.add("Max-Forwards", "70")
        c.add("From", inv.get("From") or "")
        c.add("To", inv.get("To") or "")
        c.add("Call-ID", self.call_id)
        c.add("CSeq", f"{inv.cseq[0]} CANCEL")
        self.state = CallState.CANCELLING
        return self._run(NonInviteClientTransaction(c, self.cfg.trunk, self.reliable), now)

    def _bye(self, now: float) -> list[Send]:
        self.cseq = self.invite_cseq + 1
        bye = self._request("BYE", self.remote_target, self.remote_to, self.cseq, self.route_set)
        self.state = CallState.TERMINATING
        return self._run(NonInviteClientTransaction(bye, self._dialog_addr(), self.reliable), now)

    @staticmethod
    def _response(req: Request, status: int, reason: str) -> Response:
        r = Response(status=status, reason=reason)
        for v in req.get_all("Via"):
            r.add("Via", v)
        for name in ("From", "To", "Call-ID", "CSeq"):
            r.add(name, req.get(name) or "")
        return r

    def _reply(self, req: Request, addr: Addr, status: int, reason: str) -> Send:
        return Send(self._response(req, status, reason).encode(), addr)

    def _on_bye(self, req: Request, addr: Addr, now: float) -> list[Send]:
        if self.state in (CallState.CONFIRMED, CallState.TERMINATING):
            self._end(now)
        return [self._reply(req, addr, 200, "OK")]

    def _on_refresh(self, req: Request, addr: Addr) -> list[Send]:
        """A re-INVITE or UPDATE from the far end (a session-timer refresh, a hold, a codec
        change): our session stays as it is, so the answer is our SDP unchanged. Its session
        timer, when it runs one, is accepted as it asks (RFC 4028: it refreshes, or ends the call)."""
        if self.state is not CallState.CONFIRMED:
            return [self._reply(req, addr, 481 if self.state is CallState.ENDED else 491,
                                "Call/Transaction Does Not Exist" if self.state is CallState.ENDED else "Request Pending")]
        r = self._response(req, 200, "OK")
        r.add("Contact", self.contact)
        expires = req.get("Session-Expires")
        if expires:
            r.add("Session-Expires", expires if "refresher=" in expires else f"{expires};refresher=uas")
            r.add("Require", "timer")
        if req.body:
            r.add("Content-Type", "application/sdp")
            r.body = self.offer
        return [Send(r.encode(), addr)]

    def _on_info(self, req: Request, addr: Addr) -> list[Send]:
        """DTMF by SIP INFO: `application/dtmf-relay` (`Signal=1`) or `application/dtmf` (`1`)."""
        kind = (req.get("Content-Type") or "").split(";")[0].strip().lower()
        text = req.body.decode("ascii", "replace")
        key = ""
        if kind == "application/dtmf-relay":
            for line in text.splitlines():
                name, _, value = line.partition("=")
                if name.strip().lower() == "signal":
                    key = value.strip().upper()
        elif kind == "application/dtmf":
            key = text.strip().upper()
        else:
            return [self._reply(req, addr, 415, "Unsupported Media Type")]
        if self.state is CallState.CONFIRMED and len(key) == 1 and key in "0123456789*#ABCD":
            self.info_digits.append(key)
        return [self._reply(req, addr, 200, "OK")]

    def _on_timeout(self, tx: ClientTransaction, now: float) -> list[Send]:
        if tx is self.invite_tx and self.result.outcome is None:
            self.result.outcome = Outcome.TRUNK_FAILURE
            self.result.reason = "no response from the trunk (Timer B)"
            self._end(now)
        elif isinstance(tx, NonInviteClientTransaction) and tx.request.method == "BYE":
            self._end(now)
        return []

    def _stray(self, resp: Response, now: float) -> list[Send]:
        # A response for a transaction already gone: a late 2xx retransmission still gets its ACK.
        if resp.cseq[1] == "INVITE" and 200 <= resp.status < 300 and self.ack is not None:
            return [Send(*self.ack)]
        return []

    def _end(self, now: float) -> None:
        if self.result.ended_at is None:
            self.result.ended_at = now
        self.state = CallState.ENDED

    def transport_error(self, now: float, detail: str) -> None:
        if self.result.outcome is None:
            self.result.outcome = Outcome.TRUNK_FAILURE
            self.result.reason = f"transport error: {detail}"
        self._end(now)

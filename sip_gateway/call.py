"""One outbound call as the UAC's transaction user (RFC 3261 sections 8, 9, 12, 13, 15), sans-I/O:
`start`, `on_message`, `on_timer`, `hangup` take `now` and return datagrams to send.

- INVITE through an `InviteClientTransaction`; provisional responses mark ringing.
- The ring timeout sends CANCEL (only once a provisional response came: RFC 3261 9.1); the 487
  that follows is a no-answer.
- A 2xx establishes the dialog (remote target from Contact, route set from Record-Route reversed)
  and is ACKed end to end, again for each retransmission. A 2xx that crosses our CANCEL is ACKed
  then hung up with BYE: an answered person is never left on a dead line.
- BYE through a `NonInviteClientTransaction`; a BYE from the far end is answered 200, and the
  answer is kept for Timer J to answer its retransmissions.
- Requests from the far end act only once they pass the dialog's checks (`dialog.py`: source,
  tags, CSeq; RFC 3261 12.2.2); responses only from the trunk. What is refused is noted in
  `notes` for the UAC to count.
- A second 2xx with another To tag (a fork answered on another branch) is ACKed and hung up with
  BYE at once (RFC 3261 13.2.2.4); the first dialog goes on.
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass

from sip_gateway import auth, sdp
from sip_gateway.dialog import Dialog, Note, host_key, tag_key
from sip_gateway.message import Message, Request, Response
from sip_gateway.outcomes import CallResult, Outcome, outcome_of
from sip_gateway.transaction import (
    TIMER_J,
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
#: Forked 2xx hung up per call; more are not answered (the trunk's own fork limit is far lower).
MAX_FORKS = 16


def new_id(n: int = 8) -> str:
    return os.urandom(n).hex()


@dataclass(frozen=True)
class CallIds:
    """A call's Call-ID, From tag and INVITE branches, derived (`derive`) rather than drawn at
    random, so that another process that knows the secret and the name can rebuild them: a node
    taking over a dead node's calls CANCELs the INVITEs it left ringing (RFC 3261 9.1: the CANCEL
    carries the INVITE's Call-ID, tags and Via branch) without that node having written a word per
    call before its INVITE left."""

    call_id: str
    local_tag: str
    #: The INVITE with CSeq n has branch `z9hG4bK<branch_base>.<n>`.
    branch_base: str

    @classmethod
    def derive(cls, secret: bytes, name: str, host: str) -> CallIds:
        """The ids of call `name` (unique among the secret's calls) placed from `host`. Keyed
        BLAKE2b: nobody without the secret (it never goes on the wire) can predict them."""
        h = hashlib.blake2b(name.encode(), key=secret, digest_size=20).hexdigest()
        return cls(call_id=f"{h[:16]}@{host}", local_tag=h[16:24], branch_base=h[24:40])

    def invite_branch(self, cseq: int) -> str:
        return f"z9hG4bK{self.branch_base}.{cseq}"


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
    def __init__(self, number: str, cfg: TrunkConfig, now: float, media: Addr | None = None,
                 ids: CallIds | None = None) -> None:
        self.cfg = cfg
        #: Where our RTP is received (the media engine's address and the call's port).
        self.media: Addr = media or (cfg.local[0], cfg.rtp_port)
        host, port = cfg.local
        domain = cfg.domain or cfg.trunk[0]
        self.ids = ids
        self.call_id = ids.call_id if ids is not None else f"{new_id()}@{host}"
        self.local_tag = ids.local_tag if ids is not None else new_id(4)
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
        #: The dialog the first 2xx established (None: not answered).
        self.dialog: Dialog | None = None
        self.ack: tuple[bytes, Addr] | None = None
        #: Our BYE in the dialog (its final response, or its timeout, ends the call).
        self.bye_tx: NonInviteClientTransaction | None = None
        #: Forked 2xx by To tag (lower case): their dialogs, hung up at once, and the ACK each
        #: retransmission gets.
        self.forks: dict[str, tuple[Dialog, tuple[bytes, Addr]]] = {}
        #: Hosts a message may come from on UDP (`host_key`): the trunk, and the next hop of each
        #: dialog its 2xx established.
        self.peers = {host_key(cfg.trunk[0])}
        #: After the far end's BYE: until when its answer is kept for retransmissions (Timer J).
        self.linger_until: float | None = None
        #: What the UAC counts, and why, since it last looked (it empties the list).
        self.notes: list[tuple[Note, str]] = []
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

    def _request(self, method: str, uri: str, to: str, cseq: int, routes: list[str], branch: str | None = None) -> Request:
        host, port = self.cfg.local
        r = Request(method=method, uri=uri)
        r.add("Via", f"SIP/2.0/{self.cfg.transport} {host}:{port};branch={branch or 'z9hG4bK' + new_id()};rport")
        for route in routes:
            r.add("Route", route)
        r.add("Max-Forwards", "70")
        r.add("From", self.from_hdr)
        r.add("To", to)
        r.add("Call-ID", self.call_id)
        r.add("CSeq", f"{cseq} {method}")
        return r

    def _in_dialog(self, d: Dialog, method: str, cseq: int) -> Request:
        return self._request(method, d.remote_target, d.remote_to, cseq, d.route_set)

    def _run(self, tx: ClientTransaction, now: float) -> list[Send]:
        # Keyed by method and branch: a CANCEL shares its INVITE's branch (RFC 3261 9.1).
        self.txs[f"{tx.request.method}/{tx.branch}"] = tx
        return [a for a in tx.start(now) if isinstance(a, Send)]

    # --- events --------------------------------------------------------------------------

    def start(self, now: float) -> list[Send]:
        return self._invite(now, None)

    def _invite(self, now: float, credentials: tuple[str, str] | None) -> list[Send]:
        branch = self.ids.invite_branch(self.cseq) if self.ids is not None else None
        inv = self._request("INVITE", self.uri, self.to_hdr, self.cseq, [], branch)
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
        if self.linger_until is not None:
            times.append(self.linger_until)
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
        if self.linger_until is not None and now >= self.linger_until:
            self.linger_until = None
        self._forget_done()
        return out

    def on_message(self, msg: Message, addr: Addr, now: float) -> list[Send]:
        """A message for this call (its Call-ID), from `addr`."""
        if not self.reliable and host_key(addr[0]) not in self.peers:
            return self._refuse(Note.REJECTED_SOURCE, f"{msg.start_line()[:60]!r} from {addr[0]}:{addr[1]}, not the trunk")
        if isinstance(msg, Response):
            tx = self.txs.get(f"{msg.cseq[1]}/{msg.branch}")
            out = self._actions(tx, tx.on_response(msg, now), now) if tx else self._stray(msg, now)
            self._forget_done()
            return out
        assert isinstance(msg, Request)
        return self._on_request(msg, addr, now)

    def _on_request(self, req: Request, addr: Addr, now: float) -> list[Send]:
        """RFC 3261 12.2.2: a request from the far end acts only in its dialog, in CSeq order."""
        d = self.dialog
        if d is None or not d.matches(req):
            why = f"{req.method} with tags {req.from_tag!r}/{req.to_tag!r}, not the dialog's"
            if req.method == "ACK":
                return self._refuse(Note.REJECTED_DIALOG, why)  # an ACK is never answered
            return self._refuse(Note.REJECTED_DIALOG, why, req, addr, 481, "Call/Transaction Does Not Exist")
        if req.method == "ACK":
            return []  # the ACK of our 2xx to a re-INVITE (its CSeq is the INVITE's)
        again = d.answer_to(req)
        if again is not None:
            self.notes.append((Note.RETRANSMISSIONS, f"{req.method} CSeq {req.cseq[0]} again"))
            return [Send(again, addr)]
        if self.state is CallState.ENDED:
            return self._refuse(Note.REJECTED_DIALOG, f"{req.method} after the call ended", req, addr, 481,
                                "Call/Transaction Does Not Exist")
        if req.method != "CANCEL":  # a CANCEL carries the CSeq of the request it cancels
            num = req.cseq[0]
            if d.remote_cseq is not None and num < d.remote_cseq:
                return self._refuse(Note.REJECTED_CSEQ, f"{req.method} CSeq {num} below {d.remote_cseq}", req, addr,
                                    500, "Server Internal Error")
            d.remote_cseq = num
        out = self._dispatch(req, addr, now)
        if out:
            d.answered(req, out[0].data)
        return out

    def _dispatch(self, req: Request, addr: Addr, now: float) -> list[Send]:
        if req.method == "BYE":
            return self._on_bye(req, addr, now)
        if req.method == "INFO":
            return self._on_info(req, addr)
        if req.method in ("OPTIONS", "CANCEL"):
            # A CANCEL has nothing to cancel: each request was answered at once (RFC 3261 9.2).
            return [self._reply(req, addr, 200, "OK")]
        if req.method in ("INVITE", "UPDATE"):
            return self._on_refresh(req, addr)
        return [self._reply(req, addr, 501, "Not Implemented")]

    def _refuse(self, note: Note, why: str, req: Request | None = None, addr: Addr | None = None, status: int = 0,
                reason: str = "") -> list[Send]:
        """Count and log `note`; answer `req` with `status` if one is given, else drop it."""
        self.notes.append((note, why))
        if req is None or addr is None:
            return []
        return [self._reply(req, addr, status, reason)]

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
            if tx is self.bye_tx and resp.status >= 200:
                self._end(now)
            return []  # a CANCEL's answer; the answer to a fork's BYE
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
        if self.dialog is not None and self.ack is not None:
            if self.dialog.is_remote_tag(resp.to_tag):
                return [Send(*self.ack)]  # a retransmitted 2xx: ACK it again
            return self._on_fork(resp, now)
        d = self.dialog = self._new_dialog(resp)
        self.answer_sdp = resp.body
        r = self.result
        r.answered_at = now
        r.code, r.reason = resp.status, resp.reason
        cancelled = self.state is CallState.CANCELLING
        r.outcome = outcome_of(resp.status, cancelled=cancelled)
        self.ack = (self._in_dialog(d, "ACK", self.invite_cseq).encode(), d.next_hop)
        self.state = CallState.CONFIRMED
        out = [Send(*self.ack)]
        if cancelled:
            out += self._bye(now)
        return out

    def _new_dialog(self, resp: Response) -> Dialog:
        d = Dialog.from_2xx(resp, self.local_tag, self.uri, self.to_hdr, self.cfg.trunk)
        self.peers.add(host_key(d.next_hop[0]))
        return d

    def _on_fork(self, resp: Response, now: float) -> list[Send]:
        """RFC 3261 13.2.2.4: a 2xx from another branch is a dialog of its own. We have our
        answer already, so it is ACKed and hung up at once: the person who answered there is not
        left on a line nobody listens to. Its retransmissions are ACKed again, not hung up again."""
        tag = tag_key(resp.to_tag or "")
        fork = self.forks.get(tag)
        if fork is not None:
            return [Send(*fork[1])]
        if len(self.forks) >= MAX_FORKS:
            self.notes.append((Note.REJECTED_DIALOG, f"a 2xx from fork {len(self.forks) + 1} (to tag {tag!r})"))
            return []
        d = self._new_dialog(resp)
        ack = (self._in_dialog(d, "ACK", self.invite_cseq).encode(), d.next_hop)
        self.forks[tag] = (d, ack)
        self.notes.append((Note.FORKS, f"a 2xx from another branch (to tag {tag!r}): ACK and BYE"))
        bye = self._in_dialog(d, "BYE", self.invite_cseq + 1)
        return [Send(*ack), *self._run(NonInviteClientTransaction(bye, d.next_hop, self.reliable), now)]

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
        c = self.cancel_of(self.invite_tx.request)
        self.state = CallState.CANCELLING
        return self._run(NonInviteClientTransaction(c, self.cfg.trunk, self.reliable), now)

    def sent_invite(self, cseq: int) -> Request:
        """This call's INVITE with CSeq `cseq` as it left, for a call with derived ids
        (`CallIds`), less its body: what a CANCEL is built from (RFC 3261 9.1)."""
        assert self.ids is not None
        return self._request("INVITE", self.uri, self.to_hdr, cseq, [], self.ids.invite_branch(cseq))

    def cancel_of(self, inv: Request) -> Request:
        """The CANCEL of `inv`: its Request-URI, top Via, Route set, From, To, Call-ID and CSeq
        number (RFC 3261 9.1)."""
        c = Request(method="CANCEL", uri=inv.uri)
        c.add("Via", inv.top_via)
        for route in inv.get_all("Route"):
            c.add("Route", route)
        c.add("Max-Forwards", "70")
        c.add("From", inv.get("From") or "")
        c.add("To", inv.get("To") or "")
        c.add("Call-ID", self.call_id)
        c.add("CSeq", f"{inv.cseq[0]} CANCEL")
        return c

    def _bye(self, now: float) -> list[Send]:
        assert self.dialog is not None
        self.cseq = self.invite_cseq + 1
        bye = self._in_dialog(self.dialog, "BYE", self.cseq)
        self.state = CallState.TERMINATING
        self.bye_tx = NonInviteClientTransaction(bye, self.dialog.next_hop, self.reliable)
        return self._run(self.bye_tx, now)

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
        self._end(now)
        if not self.reliable:
            self.linger_until = now + TIMER_J  # its answer is kept for a retransmitted BYE
        return [self._reply(req, addr, 200, "OK")]

    def _on_refresh(self, req: Request, addr: Addr) -> list[Send]:
        """A re-INVITE or UPDATE from the far end (a session-timer refresh, a hold, a codec
        change): our session stays as it is, so the answer is our SDP unchanged. Its session
        timer, when it runs one, is accepted as it asks (RFC 4028: it refreshes, or ends the call)."""
        if self.state is not CallState.CONFIRMED:
            return [self._reply(req, addr, 491, "Request Pending")]  # we are hanging up
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
        elif tx is self.bye_tx:
            self._end(now)
        return []

    def _stray(self, resp: Response, now: float) -> list[Send]:
        # A response for a transaction already gone: a late 2xx of our INVITE (a retransmission
        # after Timer M, or a late fork) still gets its ACK; anything else is dropped.
        inv = self.invite_tx
        if (resp.cseq[1] == "INVITE" and 200 <= resp.status < 300 and inv is not None and resp.branch == inv.branch
                and self.dialog is not None):
            return self._on_2xx(resp, now)
        self.notes.append((Note.STRAY, f"{resp.status} to {resp.cseq[1]} on branch {resp.branch!r}: no such transaction"))
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

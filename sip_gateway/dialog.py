"""A dialog as the UAC holds it (RFC 3261 section 12), and the checks a request from the far end
passes before it may act on a call (12.2.2), sans-I/O.

- Identity: the Call-ID (the UAC routes by it), the far end's From tag, which must be the remote
  tag learnt from the 2xx's To, and its To tag, which must be our local tag. A request that does
  not carry all three is not this dialog's: 481, and nothing changes.
- Order: the far end's CSeq only goes up; a request below the last one it used is answered 500
  and ignored. A request seen before (the same CSeq number and method: a BYE re-sent because our
  200 was lost) gets the same answer again and acts once.
- Source (`host_key`): on UDP, where anyone can send, a message must come from a host the trunk
  vouches for - the trunk itself (or the SBC in front of it), or the next hop the trunk's 2xx
  gave (its Record-Route, else its Contact). The host only, not the port: carriers answer from
  another port of the same host (RFC 3261 18.2.2 without rport; SBCs with several signalling
  ports), and whoever can send from the trunk's own host is past what a source check can stop.
  Over TCP/TLS the single connection to the trunk is the source.

`Note` names what the UAC counts: each refusal, a forked 2xx hung up, a request answered again.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field

from sip_gateway.errors import SipParseError
from sip_gateway.message import Request, Response, host_port, uri_of
from sip_gateway.transaction import Addr

#: Answers kept per dialog for requests that may be re-sent (RFC 3261 17.2.2: the server
#: transaction answers retransmissions until Timer J). A few: the far end has one or two at a time.
ANSWERS_KEPT = 8


class Note(enum.Enum):
    """What the UAC counts (the value is the `Counters` field), with why for the debug log."""

    #: On UDP, from a host that is not the call's trunk (nor the next hop its 2xx gave).
    REJECTED_SOURCE = "rejected_source"
    #: A request that is not this dialog's (tags), or for a dialog that has ended: 481.
    REJECTED_DIALOG = "rejected_dialog"
    #: A request whose CSeq is lower than the far end's last: 500.
    REJECTED_CSEQ = "rejected_cseq"
    #: A response for none of the call's transactions.
    STRAY = "stray"
    #: A request seen before: its answer sent again, nothing done twice.
    RETRANSMISSIONS = "retransmissions"
    #: A second 2xx with another To tag (a fork answered on another branch): ACKed, then BYE.
    FORKS = "forks"


def tag_key(tag: str) -> str:
    """A tag as tags compare: a token, case-insensitive (RFC 3261 7.3.1) - ASCII lower case only
    (str.lower() would fold other scripts' letters too)."""
    return tag.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def host_key(host: str) -> str:
    """A host as source checks compare it: an IP literal normalised (IPv6 compressed, brackets
    dropped, IPv4-mapped IPv6 as the IPv4 address), a name lower-cased."""
    h = host.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return h.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@dataclass
class Dialog:
    """One dialog of our INVITE (RFC 3261 12.1.2), established by a 2xx."""

    local_tag: str
    #: The To tag of the 2xx ("" if it had none: an RFC 2543 peer).
    remote_tag: str
    #: The Request-URI of our requests in the dialog (the 2xx's Contact).
    remote_target: str
    #: The 2xx's Record-Route, reversed.
    route_set: list[str]
    #: The To header of our requests in the dialog (the 2xx's, with its tag).
    remote_to: str
    #: Where our requests in the dialog go: the first route, else the remote target.
    next_hop: Addr
    #: The far end's last CSeq number in the dialog (None: it has sent nothing yet).
    remote_cseq: int | None = None
    answers: OrderedDict[tuple[int, str], bytes] = field(default_factory=OrderedDict)

    @classmethod
    def from_2xx(cls, resp: Response, local_tag: str, uri: str, to: str, trunk: Addr) -> Dialog:
        """The dialog a 2xx establishes; `uri` and `to` are our INVITE's, used where the 2xx
        gives none; in-dialog requests go to `trunk` when its target cannot be read."""
        try:
            target = uri_of(resp.get("Contact") or "") or uri
        except ValueError:
            target = uri
        routes = list(reversed(resp.get_all("Record-Route")))
        try:
            hop = host_port(uri_of(routes[0]) if routes else target)
        except (SipParseError, ValueError):
            hop = trunk
        if not hop[0]:
            hop = trunk
        return cls(local_tag=local_tag, remote_tag=resp.to_tag or "", remote_target=target, route_set=routes,
                   remote_to=resp.get("To") or to, next_hop=hop)

    def matches(self, req: Request) -> bool:
        """The request carries this dialog's tags (the Call-ID has routed it here). A tag is a
        token, and tokens compare case-insensitively (RFC 3261 7.3.1); Call-IDs byte by byte."""
        return self.is_remote_tag(req.from_tag) and tag_key(req.to_tag or "") == tag_key(self.local_tag)

    def is_remote_tag(self, tag: str | None) -> bool:
        """`tag` (a 2xx's To tag) is this dialog's remote tag."""
        return tag_key(tag or "") == tag_key(self.remote_tag)

    def answer_to(self, req: Request) -> bytes | None:
        """Our answer to this request if it was seen before (same CSeq number and method)."""
        return self.answers.get(req.cseq)

    def answered(self, req: Request, data: bytes) -> None:
        self.answers[req.cseq] = data
        while len(self.answers) > ANSWERS_KEPT:
            self.answers.popitem(last=False)

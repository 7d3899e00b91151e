"""SIP messages (RFC 3261 section 7): parse from bytes, build, serialise. No I/O.

The parser is strict where a mistake would misroute a call (start line, Via, CSeq, Call-ID,
Content-Length; From, To, Call-ID, CSeq and Content-Length given twice, which two readers could
each take differently) and lenient where peers differ harmlessly (header case, compact forms, folded
lines, LF instead of CRLF). Anything it refuses raises `SipParseError`; the transport drops and
counts it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from sip_gateway.errors import SipParseError

#: RFC 3261 7.3.3 compact forms, and the canonical spelling of the headers we read.
COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
    "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
}
CANONICAL = {n.lower(): n for n in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
    "Record-Route", "Route", "Allow", "Supported", "User-Agent", "Server", "Retry-After", "WWW-Authenticate",
    "Proxy-Authenticate", "Authorization", "Proxy-Authorization", "P-Asserted-Identity", "Reason", "Expires",
    "Session-Expires", "Require", "Event", "Subject", "Content-Encoding",
)}
#: Headers whose comma-separated values are separate entries (RFC 3261 7.3.1).
LISTS = {"Via", "Route", "Record-Route", "Contact"}
#: Headers that name a dialog or frame a message: a message with two of one is refused (RFC 3261
#: 7.3.1 allows a header more than once only if its value is a comma-separated list).
SINGLE = ("From", "To", "Call-ID", "CSeq", "Content-Length")
MAX_MESSAGE = 65_535
#: A method is a token, compared case-sensitively (RFC 3261 7.1): "bye" is not BYE.
_START_REQUEST = re.compile(r"^(\S+) (\S+) SIP/2\.0$")
#: The status code is three digits, then a space and the reason (which may be empty).
_START_RESPONSE = re.compile(r"^SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?$")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_LWS = re.compile(r"[ \t]+")


def ascii_int(text: str | None, max_digits: int = 10) -> int | None:
    """A number written in ASCII digits only, at most `max_digits` of them; None otherwise.
    `str.isdigit()` and `int()` accept other scripts' digits and superscripts ('²', '٣'), which
    no SIP peer means and which made `int()` raise out of the parser."""
    if text is None or len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
#: Control characters, which no header may carry (RFC 3261 25.1: TEXT-UTF8 has none); a NUL in a
#: tag or a Call-ID would otherwise compare, log and echo as if it were text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


_SEEN: dict[str, str] = {}


def canonical(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded), memoised."""
    c = _SEEN.get(name)
    if c is None:
        n = name.strip()
        c = COMPACT[n.lower()] if len(n) == 1 and n.lower() in COMPACT else CANONICAL.get(n.lower(), n)
        if len(_SEEN) < 4096:  # names from the network: bounded
            _SEEN[name] = c
    return c


def split_list(value: str) -> list[str]:
    """Split a header value on commas that are not inside quotes or angle brackets."""
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    out: list[str] = []
    cur: list[str] = []
    quoted, angle = False, 0
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(0, angle - 1)
        if ch == "," and not quoted and angle == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    tail = "".join(cur).strip()
    if tail:
        out.append(tail)
    return out


@dataclass
class Message(ABC):
    """A request or a response: headers in order (canonical names), and the body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """The first value of header `name`, given in its canonical spelling ("Call-ID")."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name` (canonical spelling), in order."""
        return [v for k, v in self.headers if k == name]

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical(name), value))

    def set(self, name: str, value: str) -> None:
        name = canonical(name)
        self.headers = [(k, v) for k, v in self.headers if k != name]
        self.headers.append((name, value))

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method); ValueError if the number is not 1-10 ASCII digits. The two are
        separated by spaces or tabs (LWS), nothing else."""
        num, _, method = _LWS.sub(" ", (self.get("CSeq") or "").strip(" \t")).partition(" ")
        n = ascii_int(num)
        if n is None:
            raise ValueError(f"bad CSeq number {num!r}")
        return n, method

    @property
    def top_via(self) -> str:
        return self.get_all("Via")[0]

    @property
    def branch(self) -> str:
        return param(self.top_via, "branch") or ""

    @property
    def from_tag(self) -> str | None:
        return param(self.get("From") or "", "tag")

    @property
    def to_tag(self) -> str | None:
        return param(self.get("To") or "", "tag")

    @abstractmethod
    def start_line(self) -> str:
        """`INVITE sip:... SIP/2.0` or `SIP/2.0 200 OK`."""

    def encode(self) -> bytes:
        lines = [self.start_line()]
        for k, v in self.headers:
            if k != "Content-Length":
                lines.append(f"{k}: {v}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Request(Message):
    method: str = "INVITE"
    uri: str = ""

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"


@dataclass
class Response(Message):
    status: int = 200
    reason: str = "OK"

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


def param(value: str, name: str) -> str | None:
    """A `;name=value` parameter of a header value (outside its `<...>` URI), or None."""
    tail = value.rsplit(">", 1)[1] if ">" in value else value
    for part in tail.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == name:
            return v.strip().strip('"')
    return None


def uri_of(value: str) -> str:
    """The URI of a name-addr (`"Bob" <sip:b@h>;tag=1`) or addr-spec (`sip:b@h;tag=1`)."""
    if "<" in value:
        start = value.index("<") + 1
        end = value.find(">", start)
        return value[start:end if end >= 0 else len(value)].strip()  # an unclosed '<': to the end
    return value.split(";", 1)[0].strip()


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """The host and port a SIP URI points at (`sip:user@host:port;params`)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    hostport = rest.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port[1:] if port.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    if not port:
        return host, default_port
    n = ascii_int(port, 5)
    if n is None or not 0 < n <= 65535:
        raise SipParseError(f"bad port in {uri[:80]!r}")
    return host, n


def parse(data: bytes) -> Request | Response:
    """Parse one datagram. Raises `SipParseError` with the reason."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes is over {MAX_MESSAGE}")
    data = data.lstrip(b"\r\n")  # keep-alive CRLFs before the start line (RFC 3261 7.5)
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SipParseError(f"header bytes are not UTF-8: {e}") from None
    if c := _CONTROL.search(text):
        raise SipParseError(f"control character {c.group()!r} in the headers")
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)  # a blank line before the start line
    if not lines:
        raise SipParseError("empty message")
    start = lines[0].strip()
    msg: Request | Response
    if m := _START_RESPONSE.match(start):
        msg = Response(status=int(m.group(1)), reason=m.group(2) or "")
    elif m := _START_REQUEST.match(start):
        if not _TOKEN.match(m.group(1)):
            raise SipParseError(f"bad method {m.group(1)!r}")
        msg = Request(method=m.group(1), uri=m.group(2))
    else:
        raise SipParseError(f"bad start line {start[:80]!r}")
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipParseError("continuation line before any header")
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or not _TOKEN.match(name.strip()):
            raise SipParseError(f"bad header line {line[:80]!r}")
        key = canonical(name)
        value = value.strip()
        if key in LISTS:
            msg.headers.extend((key, v) for v in split_list(value))
        else:
            msg.headers.append((key, value))
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if msg.get(required) is None:
            raise SipParseError(f"no {required} header")
    for single in SINGLE:
        if len(msg.get_all(single)) > 1:
            raise SipParseError(f"{single} given more than once")
    try:
        num, method = msg.cseq
    except ValueError:
        raise SipParseError(f"bad CSeq {msg.get('CSeq')!r}") from None
    if not method or num < 0 or num >= 2**31:
        raise SipParseError(f"bad CSeq {msg.get('CSeq')!r}")
    if isinstance(msg, Request) and method != msg.method:
        raise SipParseError(f"CSeq method {method} does not match {msg.method}")
    length = msg.get("Content-Length")
    if length is not None:
        n = ascii_int(length, 9)
        if n is None:
            raise SipParseError(f"bad Content-Length {length[:20]!r}")
        if n > len(body):
            raise SipParseError(f"Content-Length {n} but only {len(body)} body bytes")
        body = body[:n]
    msg.body = body
    return msg

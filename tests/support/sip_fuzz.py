"""Seeded SIP mutations for the fuzz test (tests/security/test_sip_fuzz.py), sans-I/O.

A case is one datagram, where it comes from (the trunk's host or another), and what the UAC may
make of it: the one counter it moves (`Counters` field), or "none" (accepted and answered, or a
keep-alive). Each case starts as a message of a family, then gets mutations of three kinds:

- benign: what RFC 3261 lets a peer write differently for the same message (compact forms, header
  case, whitespace around the colon, folded lines, LF line ends, CRLFs before the start line,
  unknown headers with UTF-8 text, a 64 kB header, header order, tag spelling, display names).
  The UAC must make exactly what it makes of the family's message of it.
- breaking: what makes a message malformed (a required header missing or duplicated, a CSeq
  negative, huge, in other scripts' digits or of another method, a bad Content-Length or two of
  them, bytes that are not UTF-8, control characters, a bad start line, a header line without a
  colon, a continuation first, a message cut before its headers end, binary junk). Exactly
  `malformed`.
- uncertain: bytes flipped, deleted, inserted, the message cut anywhere. Any of the family's
  outcomes, never `failed`, and never one that lets an attack act.

Uncertain mutations never touch the CSeq line: a flipped digit could make a CSeq from the past a
current one (C) or jump a harmless request's CSeq past the next (D). And a message they damage
that is a byte from acting (a tag or a Call-ID a byte off: A, F) carries a CSeq from the past as
well, so no mending of bytes lets it act on a live call.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

#: Outcomes: the `Counters` field a datagram moves, or "none".
MALFORMED, STRAY, SOURCE, DIALOG, CSEQ, AGAIN, NONE = (
    "malformed", "stray", "rejected_source", "rejected_dialog", "rejected_cseq", "retransmissions", "none")
BUCKETS = ("malformed", "failed", "stray", "rejected_source", "rejected_dialog", "rejected_cseq", "retransmissions")
COMPACT = {"Call-ID": "i", "From": "f", "To": "t", "Via": "v", "Content-Length": "l", "Contact": "m",
           "Content-Type": "c"}
REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
SINGLE = ("From", "To", "Call-ID", "CSeq", "Content-Length")
#: The largest UDP payload is 65,507 bytes; the parser takes up to 65,535.
HUGE = 64_000


@dataclass
class Target:
    """A live call as someone who saw its messages knows it."""

    call_id: str
    our_tag: str
    their_tag: str
    #: The far end's requests' From (the 200's To) and To (our From).
    far_from: str
    far_to: str
    uri: str
    #: Our INVITE's branch, Via, From and To (for forged responses).
    branch: str
    via: str
    our_from: str
    our_to: str
    #: The far end's next CSeq for harmless requests (sipp's OPTIONS used 10).
    next_cseq: int = 11


@dataclass
class Header:
    canon: str
    name: str
    value: str
    sep: str = ": "
    #: A line written as is (a malformed one).
    raw: str | None = None


@dataclass
class Msg:
    start: str
    headers: list[Header]
    body: bytes = b""
    eol: str = "\r\n"
    prefix: str = ""

    def render(self) -> tuple[bytes, dict[str, int], tuple[int, int]]:
        """The bytes; where each header's first line starts; the CSeq line's span."""
        out = bytearray((self.prefix + self.start + self.eol).encode())
        first: dict[str, int] = {}
        cseq = (0, 0)
        for h in self.headers:
            line = h.raw if h.raw is not None else f"{h.name}{h.sep}{h.value}".replace("\n", self.eol)
            first.setdefault(h.canon, len(out))
            data = (line + self.eol).encode("utf-8", "surrogateescape")
            if h.canon == "CSeq" and cseq == (0, 0):
                cseq = (len(out), len(out) + len(data))
            out += data
        out += self.eol.encode() + self.body
        return bytes(out), first, cseq

    def get(self, canon: str) -> Header | None:
        return next((h for h in self.headers if h.canon == canon), None)


@dataclass
class Case:
    family: str
    kind: str
    data: bytes
    #: "trunk" (the trunk's host, another port) or "elsewhere" (another host).
    source: str
    allowed: frozenset[str]
    #: Send the same bytes again right after (a retransmission).
    again: bool = False


def msg(start: str, *headers: tuple[str, str], body: bytes = b"") -> Msg:
    hs = [Header(n, n, v) for n, v in headers]
    hs.append(Header("Content-Length", "Content-Length", str(len(body))))
    return Msg(start, hs, body)


# --- the families -------------------------------------------------------------------------------

METHODS = ["BYE", "INFO", "OPTIONS", "INVITE", "UPDATE", "NOTIFY", "REFER", "MESSAGE", "PRACK", "SUBSCRIBE",
           "CANCEL", "ACK", "NEWMETHOD", "X-FUZZ"]
PRESS_1 = ("application/dtmf-relay", b"Signal=1\r\nDuration=160\r\n")
SDP = (b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


#: `far_request`'s tags: keep the dialog's.
KEEP = "<the dialog's>"
#: The top CSeq (the parser refuses 2**31 and above).
TOP = 2**31 - 1


def branch(rng: random.Random) -> str:
    return f"z9hG4bK{rng.getrandbits(64):016x}"


def tagged(header: str, old: str, new: str | None) -> str:
    """`header` with its tag `old` replaced by `new` (None: no tag at all)."""
    return header.replace(f";tag={old}", "" if new is None else f";tag={new}")


def far_request(rng: random.Random, t: Target, method: str, cseq: int, *, from_tag: str | None = KEEP,
                to_tag: str | None = KEEP, call_id: str | None = None, body: tuple[str, bytes] | None = None) -> Msg:
    """A request as the far end sends it; a tag given replaces the dialog's ("": empty, None: none)."""
    frm = t.far_from if from_tag == KEEP else tagged(t.far_from, t.their_tag, from_tag)
    to = t.far_to if to_tag == KEEP else tagged(t.far_to, t.our_tag, to_tag)
    headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch(rng)};rport"), ("Max-Forwards", "70"),
               ("From", frm), ("To", to), ("Call-ID", call_id or t.call_id), ("CSeq", f"{cseq} {method}")]
    if body is not None:
        headers.append(("Content-Type", body[0]))
    return msg(f"{method} {t.uri} SIP/2.0", *headers, body=body[1] if body else b"")


def response(rng: random.Random, t: Target, status: int, *, via_branch: str | None = None, to_tag: str | None = None,
             call_id: str | None = None, method: str = "INVITE") -> Msg:
    via = t.via.replace(f"branch={t.branch}", f"branch={via_branch or branch(rng)}")
    headers = [("Via", via), ("From", t.our_from), ("To", f"{t.our_to};tag={to_tag or format(rng.getrandbits(32), 'x')}"),
               ("Call-ID", call_id or t.call_id), ("CSeq", f"1 {method}")]
    body = b""
    if 200 <= status < 300 and method == "INVITE":
        headers += [("Contact", "<sip:fuzz@127.0.0.1:5060>"), ("Content-Type", "application/sdp")]
        body = SDP
    return msg(f"SIP/2.0 {status} Fuzz", *headers, body=body)


STATUSES = [100, 180, 183, 199, 200, 202, 299, 300, 302, 401, 407, 408, 481, 486, 487, 488, 500, 503, 600, 603, 699]


def wrong_tags(rng: random.Random, t: Target, damaged: bool) -> tuple[Msg, str]:
    """A: a request in the call with the wrong tags - some a byte off the right ones - from the
    trunk's host: 481 (an ACK: counted, unanswered). To be `damaged` (bytes flipped, deleted: they
    could mend a tag a byte off) it gets a CSeq from the past too, and no ACK or CANCEL (which
    carry no CSeq of their own)."""
    method = rng.choice([m for m in METHODS if m not in ("ACK", "CANCEL")] if damaged else METHODS)
    wrong = rng.choice([f"{rng.getrandbits(32):x}", "", None, t.our_tag + "x", t.their_tag[:-1]])
    which = rng.randrange(3)
    cseq = rng.randrange(0, 10) if damaged else rng.randrange(0, 2**31)
    m = far_request(rng, t, method, cseq, from_tag=wrong if which != 1 else KEEP,
                    to_tag=wrong if which != 0 else KEEP, body=PRESS_1 if method == "INFO" else None)
    return m, DIALOG


def elsewhere(rng: random.Random, t: Target, damaged: bool) -> tuple[Msg, str]:
    """B: the right tags and the next CSeq - or the INVITE's own branch - from another host."""
    if rng.random() < 0.3:
        return response(rng, t, rng.choice(STATUSES), via_branch=t.branch, to_tag=rng.choice([t.their_tag, "fork"])), SOURCE
    method = rng.choice(["BYE", "INFO", "INFO", "INVITE", "UPDATE", "OPTIONS", "CANCEL", "ACK"])
    cseq = min(TOP, t.next_cseq + rng.randrange(0, 1000))
    return far_request(rng, t, method, cseq, body=PRESS_1 if method == "INFO" else None), SOURCE


def old_cseq(rng: random.Random, t: Target, damaged: bool) -> tuple[Msg, str]:
    """C: the right tags, from the trunk's host, a CSeq below the far end's 10: 500."""
    method = rng.choice(["BYE", "INFO", "INFO", "INVITE", "UPDATE", "OPTIONS", "NOTIFY", "NEWMETHOD"])
    return far_request(rng, t, method, rng.randrange(0, 10), body=PRESS_1 if method == "INFO" else None), CSEQ


HARMLESS: list[tuple[str, tuple[str, bytes] | None]] = [
    ("OPTIONS", None), ("NOTIFY", None), ("NEWMETHOD", None), ("MESSAGE", ("text/plain", "héllo ☎".encode())),
    ("INFO", ("application/dtmf-relay", b"Signal=NOPE\r\nDuration=160\r\n")), ("INFO", ("application/dtmf", b"nope")),
    ("INFO", ("text/plain", b"1")), ("INFO", ("application/dtmf-relay", b"\x00\xff\xfe Signal\r\n")),
    ("INVITE", ("application/sdp", SDP)), ("UPDATE", None), ("CANCEL", None), ("PRACK", None), ("SUBSCRIBE", None),
    ("REFER", None),
]


def harmless(rng: random.Random, t: Target, damaged: bool) -> tuple[Msg, str]:
    """D: the right tags, from the trunk's host, the next CSeq, a request that changes nothing
    (answered 200, 415, 501 ...); a keypress that is no key. Accepted: none."""
    method, body = rng.choice(HARMLESS)
    t.next_cseq += 1
    return far_request(rng, t, method, t.next_cseq, body=body), NONE


def responses(rng: random.Random, t: Target, damaged: bool) -> tuple[Msg, str]:
    """E: responses in the call for none of its transactions (another branch), from the trunk's host."""
    method = rng.choice(["INVITE", "INVITE", "INVITE", "BYE", "CANCEL", "OPTIONS"])
    return response(rng, t, rng.choice(STATUSES), to_tag=rng.choice([t.their_tag, "other"]), method=method), STRAY


def strangers(rng: random.Random, t: Target, damaged: bool) -> tuple[Msg, str]:
    """F: requests and responses for calls we never placed - some a byte off a live call's Call-ID
    (with wrong tags, and when `damaged` a CSeq from the past, as in A)."""
    cid = rng.choice([f"{rng.getrandbits(64):x}@elsewhere", t.call_id + "x", t.call_id.upper(), "☎-ünïcode-call@x", "c" * 2000])
    if rng.random() < 0.5:
        return response(rng, t, rng.choice(STATUSES), call_id=cid), STRAY
    method = rng.choice([m for m in METHODS if m not in ("ACK", "CANCEL")] if damaged else METHODS)
    cseq = rng.randrange(0, 10) if damaged else rng.randrange(0, 2**31)
    return far_request(rng, t, method, cseq, call_id=cid, from_tag=f"{rng.getrandbits(32):x}"), STRAY


FAMILIES: dict[str, tuple[Callable[[random.Random, Target, bool], tuple[Msg, str]], frozenset[str], float]] = {
    # family: (builder, what an uncertain mutation may make of it, share of the cases)
    "A wrong tags": (wrong_tags, frozenset({DIALOG, MALFORMED, STRAY, CSEQ}), 0.20),
    "B elsewhere": (elsewhere, frozenset({SOURCE, MALFORMED, STRAY}), 0.15),
    "C old cseq": (old_cseq, frozenset({CSEQ, MALFORMED, STRAY, DIALOG}), 0.15),
    "D harmless": (harmless, frozenset({NONE, MALFORMED, STRAY, DIALOG, AGAIN}), 0.20),
    "E responses": (responses, frozenset({STRAY, MALFORMED}), 0.18),
    "F strangers": (strangers, frozenset({STRAY, MALFORMED, DIALOG, CSEQ}), 0.12),
}


# --- benign mutations -------------------------------------------------------------------------

def _compact(rng: random.Random, m: Msg) -> None:
    for h in m.headers:
        if h.canon in COMPACT and rng.random() < 0.8:
            h.name = COMPACT[h.canon]


def _case(rng: random.Random, m: Msg) -> None:
    for h in m.headers:
        h.name = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in h.name)


def _spaces(rng: random.Random, m: Msg) -> None:
    for h in m.headers:
        h.sep = rng.choice([":", " : ", "\t:\t", ":    ", " \t:  "])
        h.value += rng.choice(["", " ", "\t", "  \t "])


def _fold(rng: random.Random, m: Msg) -> None:
    """Fold a value where LWS may stand: before a ';' parameter, or at a space."""
    for h in m.headers:
        if rng.random() < 0.5 and ";" in h.value and h.canon not in ("CSeq",):
            i = h.value.index(";")
            h.value = h.value[:i] + rng.choice(["\n ", "\n\t", "\n    "]) + h.value[i:]
        elif rng.random() < 0.3 and " " in h.value.strip() and h.canon in ("CSeq", "Via"):
            h.value = h.value.strip().replace(" ", rng.choice(["\n ", "\n\t"]), 1)


def _lf(rng: random.Random, m: Msg) -> None:
    m.eol = "\n"


def _keepalive_prefix(rng: random.Random, m: Msg) -> None:
    m.prefix = rng.choice(["\r\n", "\r\n\r\n", "\r\n\r\n\r\n\r\n"])


def _unknown_headers(rng: random.Random, m: Msg) -> None:
    texts = ["ünïcødé ☎ 日本語 Ελληνικά", "plain", "", "a, b, \"c, d\" <sip:x@y>", "١٢٣ ² ³", "🙂" * 50,
             "=cmd|' /C calc'!A0", "%00%0d%0a", "<script>alert(1)</script>"]
    for _ in range(rng.randrange(1, 6)):
        name = rng.choice(["X-Fuzz", "Subject", "User-Agent", "Server", "P-Fuzz-Info", "Warning", "s", "k"])
        m.headers.insert(rng.randrange(len(m.headers) + 1), Header(name, name, rng.choice(texts)))


def _huge(rng: random.Random, m: Msg) -> None:
    size = len(m.render()[0])
    pad = HUGE - size - 200 - rng.randrange(0, 1000)
    if pad > 0:
        m.headers.insert(rng.randrange(len(m.headers) + 1), Header("X-Pad", "X-Pad", "".join(rng.choice("ab ;,=") for _ in range(pad)).strip() or "a"))


def _shuffle(rng: random.Random, m: Msg) -> None:
    rng.shuffle(m.headers)


def _tag_spelling(rng: random.Random, m: Msg) -> None:
    for h in m.headers:
        if h.canon in ("From", "To") and ";tag=" in h.value:
            h.value = h.value.replace(";tag=", rng.choice([";TAG=", " ; tag = ", ";Tag=", ";\ttag=", "; tag="]))


def _display_name(rng: random.Random, m: Msg) -> None:
    for h in m.headers:
        if h.canon in ("From", "To") and h.value.startswith("<"):
            h.value = rng.choice(['"Fuzz, \\"quoted\\" ☎" ', "Plain Name ", '"" ', '"日本" ']) + h.value


def _extra_via(rng: random.Random, m: Msg) -> None:
    """A second Via below the first (a proxy's): the top one is still the message's."""
    i = next((n for n, h in enumerate(m.headers) if h.canon == "Via"), None)
    if i is not None:
        m.headers.insert(i + 1, Header("Via", "Via", f"SIP/2.0/UDP 10.{rng.randrange(256)}.0.1:5060;branch={branch(rng)}"))


#: `_huge` is not among them: it is applied last (it sizes the message), to a few cases.
BENIGN = [_compact, _case, _spaces, _fold, _lf, _keepalive_prefix, _unknown_headers, _shuffle, _tag_spelling,
          _display_name, _extra_via]


# --- breaking mutations ------------------------------------------------------------------------

def _is_request(m: Msg) -> bool:
    return not m.start.startswith("SIP/2.0 ")


def _drop(rng: random.Random, m: Msg) -> bytes | None:
    name = rng.choice(REQUIRED)
    m.headers = [h for h in m.headers if h.canon != name]
    return None


def _duplicate(rng: random.Random, m: Msg) -> bytes | None:
    name = rng.choice(SINGLE)
    h = m.get(name)
    if h is None:
        return None
    value = h.value if rng.random() < 0.5 else ("9" if name == "Content-Length" else h.value + "x")
    if name == "CSeq":
        value = h.value  # another number would be a bad CSeq anyway; the same one is the duplicate
    m.headers.insert(rng.randrange(len(m.headers) + 1), Header(name, rng.choice([name, COMPACT.get(name, name)]), value))
    return None


def _bad_cseq(rng: random.Random, m: Msg) -> bytes | None:
    h = m.get("CSeq")
    assert h is not None
    method = h.value.split()[-1]
    bad = [f"-1 {method}", f"2147483648 {method}", f"99999999999 {method}", f"١٠ {method}", f"² {method}", f" {method}",
           f"+5 {method}", f"1.5 {method}", f"0x10 {method}", "1", f"36893488147419103232 {method}", f"1\u3000{method}"]
    if _is_request(m):
        bad += [f"1 {method}X", "1 OTHER", f"1 {method.lower()}"]
    h.value = rng.choice(bad)
    return None


def _bad_length(rng: random.Random, m: Msg) -> bytes | None:
    h = m.get("Content-Length")
    assert h is not None
    h.value = rng.choice(["-1", "abc", "١", "²", str(len(m.body) + rng.randrange(1, 1000)), "99999999999", "1e3", " ",
                          "0x10"])
    return None


def _not_utf8(rng: random.Random, m: Msg) -> bytes | None:
    data, first, _ = m.render()
    end = _head_end(data)
    start = data.index(b"\n") + 1
    at = rng.randrange(start, max(start + 1, end))
    return data[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xe9", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + data[at:]


def _control(rng: random.Random, m: Msg) -> bytes | None:
    h = rng.choice(m.headers)
    h.value = h.value[: len(h.value) // 2] + rng.choice(["\x00", "\x01", "\x1b[2J", "\x7f", "\x0b", "\x0c"]) + h.value[len(h.value) // 2:]
    return None


def _bad_start(rng: random.Random, m: Msg) -> bytes | None:
    if _is_request(m):
        method, uri, _ = m.start.split(" ")
        m.start = rng.choice([f"{method}  {uri} SIP/2.0", f"{method} {uri} SIP/2.1", f"{method} {uri} sip/2.0",
                              f"{method}\t{uri} SIP/2.0", f"{method} {uri}", f"B Y E {uri} SIP/2.0", f"{method}( {uri} SIP/2.0",
                              f"{method} SIP/2.0", "", f"{method}\u00e9 {uri} SIP/2.0"])
    else:
        m.start = rng.choice(["SIP/2.0 20 OK", "SIP/2.0 2000 OK", "SIP/2.0 099 X", "SIP/2.0 700 X", "SIP/1.0 200 OK",
                              "SIP/2.0200 OK", "HTTP/1.1 200 OK", "SIP/2.0 ٢٠٠ OK", " "])
    return None


def _no_colon(rng: random.Random, m: Msg) -> bytes | None:
    line = rng.choice(["NoColonHere", "Bad Header: x", "Call-ID", ": no name", "X-\u00e9: y", "@: x"])
    m.headers.insert(rng.randrange(len(m.headers) + 1), Header("X", "X", "", raw=line))
    return None


def _continuation_first(rng: random.Random, m: Msg) -> bytes | None:
    m.headers.insert(0, Header("X", "X", "", raw=rng.choice([" folded", "\tfolded: x", "  Via: SIP/2.0/UDP x"])))
    return None


def _cut_headers(rng: random.Random, m: Msg) -> bytes | None:
    """Cut before the last required header begins: one is missing whatever else survives."""
    data, first, _ = m.render()
    last = max(first[n] for n in REQUIRED)
    return data[: rng.randrange(len(m.prefix) + 1, last)]  # past the CRLFs (all CRLFs: a keep-alive)


def _junk(rng: random.Random, m: Msg) -> bytes | None:
    return bytes(rng.getrandbits(8) for _ in range(rng.randrange(16, 2000))) + b"\x00"  # a NUL: never a message


BREAKING = [_drop, _duplicate, _bad_cseq, _bad_length, _not_utf8, _control, _bad_start, _no_colon,
            _continuation_first, _cut_headers, _junk]


# --- uncertain mutations -------------------------------------------------------------------------

def _head_end(data: bytes) -> int:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep, data.find(b"\n") + 1)
        if i >= 0:
            return i
    return len(data)


def uncertain(rng: random.Random, data: bytes, protect: tuple[int, int]) -> bytes:
    """Flip, delete, insert or cut bytes outside the CSeq line (`protect`)."""
    def pos() -> int:
        while True:
            p = rng.randrange(len(data))
            if not protect[0] <= p < protect[1]:
                return p

    kind = rng.randrange(4)
    if kind == 0:  # flip one to three bytes
        out = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            out[pos()] = rng.getrandbits(8)
        return bytes(out)
    if kind == 1:  # delete a span that does not reach the CSeq line
        a = pos()
        b = min(len(data), a + rng.randrange(1, 40))
        if a < protect[1] and b > protect[0]:
            b = protect[0]
        return data[:a] + data[b:] if b > a else data
    if kind == 2:  # insert junk
        p = pos()
        return data[:p] + rng.choice([b"\r\n", b" ", b":", b";", b"\r\n ", b"\x00", b"<", b">", b"\"", b","]) + data[p:]
    lead = len(data) - len(data.lstrip(b"\r\n"))  # cut past the CRLFs before the start line (else: a keep-alive)
    return data[: rng.randrange(lead + 1, len(data))]  # a CSeq cut short is no CSeq, never a higher one


# --- the cases ---------------------------------------------------------------------------------

def cases(seed: int, count: int, targets: list[Target]) -> list[Case]:
    """`count` seeded cases against `targets` (two or more), in the order they are sent; the edge
    cases first. The last target's far end reaches the top CSeq there: it gets no harmless
    requests after (they would all be from the past). The same seed makes the same cases but for
    the calls' ids and tags (and byte positions that scale with them)."""
    out = edge_cases(random.Random(seed), targets[0], targets[-1])
    names = list(FAMILIES)
    weights = [FAMILIES[n][2] for n in names]
    while len(out) < count:
        # A generator per case: case n makes the same choices whatever the calls' ids and the
        # lengths they give the cases before it.
        rng = random.Random(seed * 1_000_003 + len(out))
        family = rng.choices(names, weights)[0]
        build, allowed, _ = FAMILIES[family]
        t = rng.choice(targets[:-1] if family == "D harmless" else targets)
        roll = rng.random()
        m, base = build(rng, t, roll >= 0.75)
        for mutate in rng.sample(BENIGN, rng.randrange(0, 4)):
            mutate(rng, m)
        if rng.random() < 0.03:
            _huge(rng, m)
        source = "elsewhere" if family == "B elsewhere" else "trunk"
        if roll < 0.45:
            data, _, _ = m.render()
            out.append(Case(family, "benign", data, source, frozenset({base}), again=base == NONE and rng.random() < 0.2))
        elif roll < 0.75:
            breaker = rng.choice(BREAKING)
            data = breaker(rng, m) or m.render()[0]
            out.append(Case(family, f"breaking {breaker.__name__}", data, source, frozenset({MALFORMED})))
        else:
            data, _, protect = m.render()
            out.append(Case(family, "uncertain", uncertain(rng, data, protect), source, allowed,
                            again=base == NONE and rng.random() < 0.2))
    return out[:count]


def edge_cases(rng: random.Random, t: Target, top: Target) -> list[Case]:
    """RFC 3261 / RFC 4475 style edge cases, each with its one outcome; `top`'s far end ends at
    the top CSeq."""
    def nxt() -> int:
        t.next_cseq += 1
        return t.next_cseq

    def case(name: str, data: bytes, outcome: str, source: str = "trunk") -> Case:
        return Case("G edge", name, data, source, frozenset({outcome}))

    def opt(**kw: str | None) -> Msg:
        return far_request(rng, t, "OPTIONS", nxt(), **kw)  # type: ignore[arg-type]

    out = [case("keep-alive CRLFCRLF", b"\r\n\r\n", NONE), case("keep-alive CRLF", b"\r\n", NONE),
           case("keep-alive spaces", b" \t \r\n", NONE)]
    m = opt()
    for f in (_compact, _fold, _lf, _spaces):
        f(rng, m)
    out.append(case("compact forms, folded, LF only, odd whitespace", m.render()[0], NONE))
    m = opt()
    m.headers = [replace(h, name=COMPACT.get(h.canon, h.name)) for h in m.headers]
    out.append(case("every compact form i f t v l", m.render()[0], NONE))
    out.append(case("CRLFs before the start line", b"\r\n\r\n\r\n" + opt().render()[0], NONE))
    m = opt()
    h = m.get("CSeq")
    assert h is not None
    h.value = h.value.replace(" ", "\t \t")
    out.append(case("CSeq number and method split by tabs (LWS)", m.render()[0], NONE))
    out.append(case("unknown method, right tags", far_request(rng, t, "NEWMETHOD", nxt()).render()[0], NONE))
    m = far_request(rng, t, "OPTIONS", nxt())
    m.start = m.start.replace("OPTIONS", "options")
    out.append(case("lower-case method against an upper-case CSeq method", m.render()[0], MALFORMED))
    m = opt()
    m.headers.append(Header("Content-Length", "l", "4"))
    out.append(case("Content-Length twice (RFC 4475 mcl01)", m.render()[0], MALFORMED))
    m = opt()
    h = m.get("Content-Length")
    assert h is not None
    h.value = "-999"
    out.append(case("negative Content-Length (RFC 4475 ncl)", m.render()[0], MALFORMED))
    m = opt()
    h = m.get("CSeq")
    assert h is not None
    h.value = "36893488147419103232 OPTIONS"
    out.append(case("CSeq beyond 2**31 (RFC 4475 scalar02)", m.render()[0], MALFORMED))
    m = opt()
    h = m.get("CSeq")
    assert h is not None
    h.value = "١١ OPTIONS"
    out.append(case("CSeq in Arabic-Indic digits", m.render()[0], MALFORMED))
    m = opt()
    h = m.get("Content-Length")
    assert h is not None
    h.value = "٠"
    out.append(case("Content-Length in Arabic-Indic digits", m.render()[0], MALFORMED))
    m = opt()
    m.headers = [h for h in m.headers if h.canon != "Call-ID"]
    out.append(case("no Call-ID (RFC 4475 insuf)", m.render()[0], MALFORMED))
    m = opt()
    m.body = b"xxxxxxxx"
    h = m.get("Content-Length")
    assert h is not None
    h.value = "2"
    out.append(case("Content-Length shorter than the body: the rest is dropped", m.render()[0], NONE))
    m = opt()
    m.headers = [h for h in m.headers if h.canon != "Content-Length"]
    out.append(case("no Content-Length on UDP", m.render()[0], NONE))
    m = opt()
    h = m.get("Content-Length")
    assert h is not None
    h.value = "0000"
    out.append(case("Content-Length 0000", m.render()[0], NONE))
    m = far_request(rng, t, "OPTIONS", nxt(), to_tag=t.our_tag.upper(), from_tag=t.their_tag.upper())
    out.append(case("tags in another case (tokens are case-insensitive)", m.render()[0], NONE))
    m = far_request(rng, t, "OPTIONS", nxt(), to_tag=None)
    h = m.get("To")
    assert h is not None
    h.value = h.value.replace(">", f";tag={t.our_tag}>")
    out.append(case("our tag inside the To URI is no tag", m.render()[0], DIALOG))
    m = far_request(rng, t, "INFO", nxt(), body=("application/dtmf-relay", b"\x00\xff\xfe\x80Signal=\xff\r\n"))
    out.append(case("non-UTF-8 bytes in the body", m.render()[0], NONE))
    m = opt()
    m.start = "OPTIONS sips:%61%62c@[::1]:5061;transport=tls?x=%20 SIP/2.0"
    out.append(case("escaped sips Request-URI with IPv6", m.render()[0], NONE))
    m = opt()
    for i in range(150):
        m.headers.insert(1, Header("Via", "Via", f"SIP/2.0/UDP 10.0.{i}.1:5060;branch={branch(rng)}"))
    out.append(case("150 Vias", m.render()[0], NONE))
    m = opt()
    h = m.get("CSeq")
    assert h is not None
    h.name = "cseq \t"
    out.append(case("header name in lower case with LWS before the colon", m.render()[0], NONE))
    out.append(case("a 60 kB Call-ID we never placed", far_request(rng, t, "BYE", 1, call_id="c" * 60_000).render()[0], STRAY))
    out.append(case("a 699 on another branch", response(rng, t, 699).render()[0], STRAY))
    out.append(case("the INVITE's 200 again from another host", response(rng, t, 200, via_branch=t.branch, to_tag=t.their_tag).render()[0],
                    SOURCE, "elsewhere"))
    out.append(case("a forked 200 from another host", response(rng, t, 200, via_branch=t.branch, to_tag="fork").render()[0],
                    SOURCE, "elsewhere"))
    out.append(case("a BYE from another host", far_request(rng, t, "BYE", nxt()).render()[0], SOURCE, "elsewhere"))
    out.append(case("an INFO Signal=1 from another host", far_request(rng, t, "INFO", nxt(), body=PRESS_1).render()[0],
                    SOURCE, "elsewhere"))
    out.append(case("a BYE with CSeq 0", far_request(rng, t, "BYE", 0).render()[0], CSEQ))
    out.append(case("an INFO Signal=1 with CSeq 9", far_request(rng, t, "INFO", 9, body=PRESS_1).render()[0], CSEQ))
    out.append(case("CSeq 2**31 - 1 of a harmless request", far_request(rng, top, "OPTIONS", TOP).render()[0], NONE))
    top.next_cseq = TOP  # the far end's CSeq is now at the top: what follows is from the past
    out.append(case("then a BYE below it", far_request(rng, top, "BYE", TOP - 1).render()[0], CSEQ))
    out.append(case("and the same OPTIONS again: answered again", far_request(rng, top, "OPTIONS", TOP).render()[0], AGAIN))
    return out

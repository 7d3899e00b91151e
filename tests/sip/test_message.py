"""The SIP parser: what peers send (compact forms, folding, LF only, lists) and what it refuses."""

from __future__ import annotations

import pytest

from sip_gateway.errors import SipParseError
from sip_gateway.message import Request, Response, host_port, param, parse, uri_of

INVITE = (
    b"INVITE sip:84901234567@carrier.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKdef\r\n"
    b"v: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKghi\r\n"
    b"f: \"Dialer, Inc\" <sip:dialer@10.0.0.1>;tag=f1\r\n"
    b"t: <sip:84901234567@carrier.example>\r\n"
    b"i: abc@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Subject: a folded\r\n   header\r\n"
    b"Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
    b"l: 4\r\n\r\nbodyEXTRA"
)


def test_parses_compact_forms_lists_folding_and_body_length() -> None:
    m = parse(INVITE)
    assert isinstance(m, Request) and m.method == "INVITE" and m.uri == "sip:84901234567@carrier.example"
    assert len(m.get_all("Via")) == 3 and m.branch == "z9hG4bKabc"
    assert m.call_id == "abc@10.0.0.1" and m.cseq == (1, "INVITE")
    assert m.from_tag == "f1" and m.to_tag is None
    assert m.get("Subject") == "a folded header"
    assert m.get_all("Record-Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert m.body == b"body"


def test_round_trip_and_lf_only_line_ends() -> None:
    m = parse(INVITE)
    again = parse(m.encode())
    assert again.headers == m.headers and again.body == m.body
    lf = parse(INVITE.replace(b"\r\n", b"\n"))
    assert lf.call_id == m.call_id and lf.body == b"body"
    keep_alive = parse(b"\r\n\r\n\r\n" + INVITE)  # CRLFs before the start line are skipped (RFC 3261 7.5)
    assert keep_alive.headers == m.headers and keep_alive.body == b"body"
    assert parse(INVITE.replace(b"Subject: a", b"Subject: a\ttab")).get("Subject") == "a\ttab folded header"
    assert parse(INVITE.replace(b"CSeq: 1 INVITE", b"CSeq:\t1 \t INVITE")).cseq == (1, "INVITE")  # LWS: SP or HTAB


def test_response_and_name_addr_helpers() -> None:
    r = parse(b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
              b"To: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(r, Response) and r.status == 486 and r.reason == "Busy Here" and r.to_tag == "2"
    assert uri_of('"B" <sip:b@h:5080;transport=udp>;tag=9') == "sip:b@h:5080;transport=udp"
    assert host_port("sip:b@h:5080;transport=udp") == ("h", 5080)
    assert host_port("sip:[::1]:5062") == ("::1", 5062)
    assert param("<sip:x;lr>;tag=abc", "tag") == "abc" and param("<sip:x;tag=no>", "tag") is None
    assert uri_of("<sip:b@h:5080") == "sip:b@h:5080", "an unclosed '<' is not an exception"
    bare = parse(b"SIP/2.0 200\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
                 b"To: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 7 INVITE\r\n\r\n")
    assert isinstance(bare, Response) and (bare.status, bare.reason) == (200, ""), "a reason may be empty"
    ext = parse(INVITE.replace(b"INVITE sip", b"X-NEW.METHOD sip").replace(b"CSeq: 1 INVITE", b"CSeq: 1 X-NEW.METHOD"))
    assert isinstance(ext, Request) and ext.method == "X-NEW.METHOD", "an extension method is any token"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x00\xff\xfe garbage", "start line|UTF-8"),
        (b"HELLO WORLD\r\n\r\n", "start line"),
        (b"SIP/2.0 999 Nope\r\n\r\n", "start line"),
        (b"SIP/2.0 2000 OK\r\n\r\n", "start line"),  # not a 200 with reason "0 OK"
        (INVITE.replace(b"INVITE sip", b"INV\xc3\xa9TE sip"), "bad method"),
        (INVITE.replace(b"INVITE sip", b"invite sip"), "does not match"),  # methods are case-sensitive
        (INVITE.replace(b"i: abc@10.0.0.1\r\n", b""), "Call-ID"),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), "CSeq"),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "does not match"),
        (INVITE.replace(b"l: 4", b"l: 400"), "Content-Length"),
        (INVITE.replace(b"l: 4", b"l: -4"), "Content-Length"),
        (INVITE.replace(b"i: abc", b"no colon here abc"), "header line"),
        (b"INVITE sip:x SIP/2.0\r\n  folded first\r\n\r\n", "continuation"),
        (b"X" * 70_000, "over"),
        (INVITE.replace(b"CSeq: 1 INVITE", "CSeq: 1\u3000INVITE".encode()), "CSeq"),
        (INVITE.replace(b"i: abc", b"i: a\x00bc"), "control character"),
        (INVITE.replace(b"i: abc", b"i: a\x1b[2Jbc"), "control character"),
        (INVITE.replace(b"l: 4", b"l: 4\r\nContent-Length: 9"), "Content-Length given more than once"),
        (INVITE.replace(b"l: 4", b"l: 4\r\nl: 4"), "Content-Length given more than once"),
        (INVITE.replace(b"t: <", b"To: <sip:other@h>;tag=x\r\nt: <"), "To given more than once"),
        (INVITE.replace(b"i: abc", b"Call-ID: def\r\ni: abc"), "Call-ID given more than once"),
    ],
)
def test_refuses_malformed_messages_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        parse(data)

"""Media goes only to a unicast IP literal from the answer's `c=`: a host name (before: passed to
the media engine, which raised out of the answer hook, and on TCP/TLS dropped the trunk's
connection), a multicast group, 0.0.0.0 or broadcast means no usable audio (the call ends as
`no_media`)."""

from __future__ import annotations

import pytest

from sip_gateway import sdp


def answer(c: str) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n").encode()


@pytest.mark.parametrize("c", ["evil.example.com", "239.1.2.3", "0.0.0.0", "255.255.255.255", "ff02::1", "1.2.3"])
def test_no_media_to_names_groups_or_nowhere(c: str) -> None:
    assert sdp.answer_media(answer(c)) is None


def test_a_unicast_address_is_used() -> None:
    m = sdp.answer_media(answer("192.0.2.10"))
    assert m is not None and (m.host, m.port, m.payload_type, m.dtmf_payload_type) == ("192.0.2.10", 40000, 0, 101)

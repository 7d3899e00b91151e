"""What an SDP answer chose for audio."""

from __future__ import annotations

import pytest

from sip_gateway.sdp import Media, answer_media, offer


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(["v=0", "o=- 1 1 IN IP4 10.0.0.1", "s=-", "t=0 0", *lines]) + "\r\n").encode()


@pytest.mark.parametrize(("body", "want"), [
    (sdp("c=IN IP4 10.0.0.9", "m=audio 4000 RTP/AVP 8 101", "a=rtpmap:101 telephone-event/8000"),
     Media("10.0.0.9", 4000, 8, 101)),
    # A media-level c= wins; the first of PCMU/PCMA in the answer's order; a dynamic DTMF type.
    (sdp("c=IN IP4 10.0.0.9", "m=audio 4000 RTP/AVP 18 0 8 96", "c=IN IP4 10.0.0.7", "a=rtpmap:96 telephone-event/8000"),
     Media("10.0.0.7", 4000, 0, 96)),
    # No telephone-event; a video stream after the audio is not read.
    (sdp("c=IN IP6 ::1", "m=audio 5000 RTP/AVP 0", "m=video 5002 RTP/AVP 96", "a=rtpmap:96 telephone-event/8000"),
     Media("::1", 5000, 0, None)),
    # An rtpmap for a type the m= line does not list is not used.
    (sdp("c=IN IP4 10.0.0.9", "m=audio 4000 RTP/AVP 0", "a=rtpmap:101 telephone-event/8000"),
     Media("10.0.0.9", 4000, 0, None)),
])
def test_answers(body: bytes, want: Media) -> None:
    assert answer_media(body) == want


@pytest.mark.parametrize("body", [
    b"",
    sdp("c=IN IP4 10.0.0.9", "m=audio 0 RTP/AVP 0"),  # refused stream
    sdp("c=IN IP4 10.0.0.9", "m=audio 4000 RTP/AVP 18"),  # no G.711
    sdp("m=audio 4000 RTP/AVP 0"),  # no address
    sdp("c=IN IP4 10.0.0.9", "m=audio x RTP/AVP 0"),
    sdp("c=IN IP4 10.0.0.9", "m=video 4000 RTP/AVP 0"),
])
def test_no_usable_audio(body: bytes) -> None:
    assert answer_media(body) is None


def test_our_offer_reads_back() -> None:
    assert answer_media(offer("192.0.2.1", 40000)) == Media("192.0.2.1", 40000, 0, 101)

"""SDP (RFC 4566) for our offers: G.711 u-law and A-law with RFC 4733 telephone-event."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from sip_gateway.message import ascii_int


def offer(ip: str, rtp_port: int) -> bytes:
    """An audio offer: PCMU, PCMA, telephone-event 0-16, 20 ms frames."""
    session = int.from_bytes(os.urandom(4), "big")
    family = "IP6" if ":" in ip else "IP4"
    lines = [
        "v=0",
        f"o=- {session} {session} IN {family} {ip}",
        "s=-",
        f"c=IN {family} {ip}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def media_address(body: bytes) -> tuple[str, int] | None:
    """The audio address of an answer (session or media `c=`, first `m=audio` port)."""
    ip, port = None, None
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("c=") and len(line.split()) >= 3:
            ip = line.split()[2]
        elif line.startswith("m=audio ") and port is None:
            port = ascii_int(line.split()[1] if len(line.split()) > 1 else None, 5)
            if port is None:
                return None
    return (ip, port) if ip and port is not None else None


@dataclass(frozen=True)
class Media:
    """What an answer chose for audio: where to send RTP, the codec and the telephone-event type."""

    host: str
    port: int
    #: 0 (PCMU) or 8 (PCMA): the first of ours in the answer's format list.
    payload_type: int
    #: The answer's RFC 4733 telephone-event payload type (None: it has none).
    dtmf_payload_type: int | None


def unicast(host: str) -> bool:
    """Is `host` an IP address media may be sent to: a literal (a name would have to be looked
    up, on the loop, and could point anywhere), unicast, not 0.0.0.0 or ::, not broadcast."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not (ip.is_multicast or ip.is_unspecified or str(ip) == "255.255.255.255")


def answer_media(body: bytes) -> Media | None:
    """The audio of an SDP answer; None when it has no usable audio (no address, port 0 - the
    stream refused - neither PCMU nor PCMA, or a `c=` address media must not be sent to: a host
    name, multicast, unspecified, broadcast)."""
    host: str | None = None
    port, formats, dtmf = None, [], None
    in_audio = False
    for line in body.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("m="):
            if in_audio:
                break  # only the first audio stream
            parts = line[2:].split()
            in_audio = len(parts) >= 4 and parts[0] == "audio"
            if in_audio:
                port = ascii_int(parts[1], 5)
                if port is None:
                    return None
                formats = parts[3:]
        elif line.startswith("c=") and len(line.split()) >= 3:
            host = line.split()[2].split("/")[0]
        elif in_audio and line.lower().startswith("a=rtpmap:"):
            pt, _, enc = line[9:].partition(" ")
            if enc.lower().startswith("telephone-event/8000") and ascii_int(pt, 3) is not None:
                dtmf = ascii_int(pt, 3)
    codec = next((int(f) for f in formats if f in ("0", "8")), None)
    if not host or not port or not 0 < port <= 65535 or codec is None or not unicast(host):
        return None
    return Media(host=host, port=port, payload_type=codec,
                 dtmf_payload_type=dtmf if dtmf is not None and str(dtmf) in formats else None)

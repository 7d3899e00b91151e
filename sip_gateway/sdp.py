"""SDP (RFC 4566) for our offers: G.711 u-law and A-law with RFC 4733 telephone-event."""

from __future__ import annotations

import os


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
            try:
                port = int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return (ip, port) if ip and port is not None else None

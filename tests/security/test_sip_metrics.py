"""Every malformed or refused SIP message shows in /metrics (api/metrics.py `SipCollector`): an
operator sees an attack, not only a debug log line."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx

from api.auth import create_token
from tests.support.api_server import api_server
from tests.support.sipp import Sipp, free_udp_port


def refused(text: str, kind: str) -> float:
    m = re.search(rf'^dialer_sip_refused_total\{{kind="{kind}"\}} (\S+)$', text, flags=re.M)
    return float(m[1]) if m else -1.0


def test_malformed_and_stray_sip_messages_are_counted_in_metrics(redis_url: str, tmp_path: Path) -> None:
    carrier = Sipp("uas_carrier.xml", 10, tmp_path, timeout_s=60).start()
    sip_port = free_udp_port()
    token, _ = create_token(redis_url, "admin", "metrics")
    try:
        with api_server(redis_url, tmp_path / "s", extra=["--trunk", f"127.0.0.1:{carrier.port}",
                                                          "--sip-bind", f"127.0.0.1:{sip_port}"]) as server:
            h = {"Authorization": f"Bearer {token}"}
            before = httpx.get(server.base_url + "/metrics", headers=h).text
            assert refused(before, "malformed") == 0 and refused(before, "stray") == 0, before
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"SIP/2.0 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\n", ("127.0.0.1", sip_port))  # '²'
                s.sendto(b"\x00\x01junk", ("127.0.0.1", sip_port))
                s.sendto(b"BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
                         b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: nobody\r\nCSeq: 1 BYE\r\n"
                         b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ("127.0.0.1", sip_port))
            deadline = time.monotonic() + 5
            while True:
                text = httpx.get(server.base_url + "/metrics", headers=h).text
                if refused(text, "malformed") == 2 and refused(text, "stray") == 1:
                    break
                assert time.monotonic() < deadline, text
                time.sleep(0.1)
            assert "dialer_sip_received_total 3.0" in text
            assert "Traceback" not in server.log_text()
    finally:
        carrier.stop()

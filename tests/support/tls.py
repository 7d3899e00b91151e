"""TLS in front of sipp: a throwaway CA and server certificate (openssl), and stunnel
terminating TLS on a free loopback port and forwarding to sipp's TCP port (this machine's sipp is
built without TLS)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.sipp import free_udp_port, tcp_listening


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for the name "carrier.test" and IP 127.0.0.1."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = d / "ca.key", d / "ca.pem", d / "server.key", d / "server.csr", d / "server.pem"
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=DNS:carrier.test,IP:127.0.0.1\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=dialer test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=carrier.test")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(crt),
        "-days", "2", "-extfile", str(ext))
    return ca, crt, key


@contextmanager
def stunnel(d: Path, backend_port: int) -> Iterator[tuple[int, Path]]:
    """TLS on a free port -> 127.0.0.1:backend_port. Yields (port, the CA file that verifies it)."""
    ca, crt, key = make_certs(d / "certs")
    port = free_udp_port()
    conf = d / "stunnel.conf"
    conf.write_text(f"foreground = yes\npid =\n[sip]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend_port}\n"
                    f"cert = {crt}\nkey = {key}\n")
    log = open(d / "stunnel.log", "wb")
    proc = subprocess.Popen(["stunnel4", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not tcp_listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stunnel did not start: {(d / 'stunnel.log').read_text(errors='replace')}")
            time.sleep(0.05)
        yield port, ca
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()

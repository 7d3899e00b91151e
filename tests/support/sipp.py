"""sipp as the carrier: a UAS scenario from loadtest/sipp/ on a free loopback UDP port."""

from __future__ import annotations

import random
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[2] / "loadtest" / "sipp"


def free_udp_port() -> int:
    """A port free for both UDP and TCP on loopback, from 10000-19999: outside the kernel's
    ephemeral range, where the dialer's own sockets could take it before sipp binds it."""
    rng = random.Random()
    while True:
        port = rng.randrange(10000, 20000)
        if udp_port_taken(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def free_media_port() -> int:
    """An even UDP port, with the three above it also free, outside the kernel's ephemeral range
    (32768-60999 on Linux): sipp binds -mp for audio and the ports above it for RTCP and video,
    and the dialer's media engine takes its per-call RTP sockets from the ephemeral range, so a
    port picked there can be taken again before sipp binds it."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 32000, 4)
        if not any(udp_port_taken(p) for p in range(port, port + 4)):
            return port


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def tcp_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class TracedCall:
    """One call as the carrier's own trace shows it."""

    number: str
    invited_at: float
    #: The INVITE's top Via sent-by ("host:port"): which of our nodes placed it.
    via: str = ""
    #: The first final response the carrier sent to the INVITE (None: none yet, still ringing).
    final: int | None = None
    final_at: float | None = None
    #: When our ACK of a 2xx first arrived (the node had the answer).
    acked_at: float | None = None
    #: When our BYE, or our CANCEL, first arrived.
    bye_at: float | None = None
    cancel_at: float | None = None

    @property
    def answered(self) -> bool:
        return self.final is not None and 200 <= self.final < 300

    @property
    def left_up(self) -> bool:
        """Answered with no BYE, or left ringing with no CANCEL: a call left hanging."""
        return (self.bye_at is None) if self.answered else (self.final is None and self.cancel_at is None)


@dataclass
class Sipp:
    """A running sipp UAS. `wait()` returns its exit code: 0 when every call went as scripted
    (every final response ACKed, every expected request received)."""

    scenario: str
    calls: int
    workdir: Path
    keys: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 90.0
    #: sipp's -t: "u1" (UDP, one socket) or "t1" (TCP, one connection).
    transport: str = "u1"
    #: More sipp options (e.g. ["-trace_msg"]).
    extra: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sipp:
        self.port = free_udp_port()
        builtin = not self.scenario.endswith(".xml")
        # Its own media port: sipp binds 6000 by default, which two sipps cannot share.
        cmd = ["sipp", "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(free_media_port()), "-t", self.transport, "-m", str(self.calls), "-nostdin",
               "-timeout", f"{self.timeout_s:g}s", "-timeout_error", "-trace_err",
               "-error_file", str(self.workdir / f"sipp-{self.port}-errors.log")]
        cmd += self.extra
        if builtin:
            cmd += ["-sn", self.scenario]
        else:
            # A template: @KEY@ placeholders take the keys' values (sipp's own -key cannot be
            # used in a status line).
            text = (SCENARIOS / self.scenario).read_text()
            for k, v in self.keys.items():
                text = text.replace(f"@{k.upper()}@", v)
            text = re.sub(r"^@[A-Z_]+@\n", "", text, flags=re.M)  # optional ones not given
            rendered = self.workdir / f"{self.port}-{self.scenario}"
            rendered.write_text(text)
            cmd += ["-sf", str(rendered)]
        stderr = self.workdir / f"sipp-{self.port}.stderr"
        with open(stderr, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        ready = tcp_listening if self.transport.startswith("t") else udp_port_taken
        while not ready(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"sipp exited at start: {stderr.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError("sipp did not bind its port within 10 s")
            time.sleep(0.02)
        return self

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def _trace(self) -> list[tuple[float, str, str]]:
        """Every message of the -trace_msg log: (epoch seconds, "received" | "sent", text)."""
        out = []
        for log in self.workdir.glob(f"{self.port}-*_messages.log"):
            parts = re.split(r"^-{5,}\s+(\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d)(\.\d+)\s*$",
                             log.read_text(errors="replace"), flags=re.M)
            for i in range(1, len(parts) - 3, 4):
                stamp = time.mktime(time.strptime(f"{parts[i]} {parts[i + 1]}", "%Y-%m-%d %H:%M:%S")) + float(parts[i + 2])
                body = parts[i + 3]
                direction = "sent" if re.search(r"^\w+ message sent", body, flags=re.M) else "received"
                text = body.split("\n\n", 1)[1] if "\n\n" in body else body
                out.append((stamp, direction, text.lstrip("\n")))
        return sorted(out, key=lambda m: m[0])

    def invites(self) -> list[float]:
        """When each INVITE arrived (epoch seconds), from the -trace_msg log."""
        return [t for t, d, text in self._trace() if d == "received" and text.startswith("INVITE ")]

    def invited(self) -> dict[str, int]:
        """How many calls (distinct Call-IDs of INVITEs, so retransmissions count once) each
        dialled number received (the Request-URI's user), from the -trace_msg log."""
        counts: dict[str, int] = {}
        for c in self.traced().values():
            counts[c.number] = counts.get(c.number, 0) + 1
        return counts

    def traced(self) -> dict[str, TracedCall]:
        """Each call (by Call-ID) as the carrier saw it, from the -trace_msg log: the number it
        was for, whether the carrier answered it, and when our BYE or CANCEL came."""
        out: dict[str, TracedCall] = {}
        for stamp, direction, text in self._trace():
            cid = re.search(r"^Call-ID:\s*(\S+)", text, flags=re.M | re.I)
            cseq = re.search(r"^CSeq:\s*\d+\s+(\w+)", text, flags=re.M | re.I)
            if cid is None:
                continue
            m = re.match(r"INVITE sip:([^@;>\s]+)@", text)
            if direction == "received" and m and cid[1] not in out:
                via = re.search(r"^Via:\s*SIP/2.0/\w+\s+([^;\s]+)", text, flags=re.M | re.I)
                out[cid[1]] = TracedCall(number=m[1], invited_at=stamp, via=via[1] if via else "")
            c = out.get(cid[1])
            if c is None:
                continue
            status = re.match(r"SIP/2.0 (\d{3})", text)
            if direction == "sent" and status and cseq and cseq[1] == "INVITE" and int(status[1]) >= 200 and c.final is None:
                c.final, c.final_at = int(status[1]), stamp
            if direction == "received" and text.startswith("ACK ") and c.answered and c.acked_at is None:
                c.acked_at = stamp
            method = re.match(r"(BYE|CANCEL) ", text)
            if direction == "received" and method:
                if method[1] == "BYE" and c.bye_at is None:
                    c.bye_at = stamp
                elif method[1] == "CANCEL" and c.cancel_at is None:
                    c.cancel_at = stamp
        return out

    def errors(self) -> str:
        p = self.workdir / f"sipp-{self.port}-errors.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

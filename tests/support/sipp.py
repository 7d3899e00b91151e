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

    def invites(self) -> list[float]:
        """When each INVITE arrived (epoch seconds), from the -trace_msg log."""
        out = []
        for log in self.workdir.glob(f"{self.port}-*_messages.log"):
            stamp = None
            for line in log.read_text(errors="replace").splitlines():
                m = re.match(r"^-+\s+(\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)", line)
                if m:
                    stamp = time.mktime(time.strptime(f"{m[1]} {m[2].split('.')[0]}", "%Y-%m-%d %H:%M:%S")) + float("0." + m[2].split(".")[1])
                elif line.startswith("INVITE ") and stamp is not None:
                    out.append(stamp)
        return sorted(out)

    def invited(self) -> dict[str, int]:
        """How many calls (distinct Call-IDs of INVITEs, so retransmissions count once) each
        dialled number received (the Request-URI's user), from the -trace_msg log."""
        calls: dict[str, set[str]] = {}
        for log in self.workdir.glob(f"{self.port}-*_messages.log"):
            for block in re.split(r"^-{5,}.*$", log.read_text(errors="replace"), flags=re.M):
                m = re.search(r"^INVITE sip:([^@;>\s]+)@", block, flags=re.M)
                cid = re.search(r"^Call-ID:\s*(\S+)", block, flags=re.M | re.I)
                if m and cid:
                    calls.setdefault(m[1], set()).add(cid[1])
        return {n: len(ids) for n, ids in calls.items()}

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

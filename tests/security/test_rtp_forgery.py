"""Keypresses count only from the call's far end. Before, every packet on a call's RTP port was
taken from anyone: RFC 4733 telephone-events sprayed at the port range from an unrelated socket
were the subscribers' keys (1,043 subscribers who pressed nothing "agreed" in a test). Now a
packet counts only from the IP the call was connected to (the answer's `c=`), from the port and
SSRC of the first such packet; the rest is dropped and counted, and a flood at one port is read
16 datagrams a frame before the frames go out, so every other call stays on time.

The engine and its sockets are real (loopback UDP); 127.0.0.2 is another host to the engine (an
address of this host's loopback, but not the far end's IP)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import dialer_core
import pytest
import uvloop

from api.metrics import Metrics
from sip_gateway.media import MediaHub

LOCAL = "127.0.0.1"
OTHER_HOST = "127.0.0.2"


def rtp(ssrc: int, seq: int, ts: int, pt: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def key_packets(ssrc: int, seq: int, ts: int, key: int) -> list[bytes]:
    """One 100 ms RFC 4733 event: its start, four updates, and its end three times."""
    out = [rtp(ssrc, seq + i, ts, 101, struct.pack("!BBH", key, 10, 160 * (i + 1)), marker=i == 0) for i in range(5)]
    return out + [rtp(ssrc, seq + 5 + i, ts, 101, struct.pack("!BBH", key, 0x80 | 10, 800)) for i in range(3)]


def udp(host: str = LOCAL) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


class Leg:
    """A call on the engine, connected to a socket of the test's own: its far end, which sends
    its RTP from `sender` (by default the socket the call was connected to)."""

    def __init__(self, engine: dialer_core.MediaEngine, ssrc: int) -> None:
        self.engine = engine
        self.far = udp()
        self.sender = self.far
        self.call, port = engine.open()
        self.ours = (LOCAL, port)
        engine.connect(self.call, LOCAL, self.far.getsockname()[1])
        self.ssrc, self.seq, self.ts = ssrc, 0, 0

    def audio(self, frames: int = 1) -> None:
        for _ in range(frames):
            self.sender.sendto(rtp(self.ssrc, self.seq, self.ts, 0, b"\xff" * 160), self.ours)
            self.seq, self.ts = self.seq + 1, self.ts + 160

    def press(self, key: int) -> None:
        for p in key_packets(self.ssrc, self.seq, self.ts, key):
            self.sender.sendto(p, self.ours)
        self.seq, self.ts = self.seq + 8, self.ts + 800

    def close(self) -> None:
        for s in {self.far, self.sender}:
            s.close()


@pytest.fixture
def engine() -> Iterator[dialer_core.MediaEngine]:
    e = dialer_core.MediaEngine()
    yield e
    e.shutdown()


@pytest.fixture
def leg(engine: dialer_core.MediaEngine) -> Iterator[Callable[[int], Leg]]:
    made: list[Leg] = []

    def make(ssrc: int) -> Leg:
        made.append(Leg(engine, ssrc))
        return made[-1]

    yield make
    for x in made:
        x.close()


def until(engine: dialer_core.MediaEngine, done: Callable[[dialer_core.MediaStats], bool], within: float = 5.0,
          ) -> list[tuple[int, str]]:
    """The digits heard until `done(stats)` holds (raises if it does not within `within` s)."""
    deadline = time.monotonic() + within
    digits: list[tuple[int, str]] = []
    while True:
        digits += [(call, key) for kind, call, key in engine.events() if kind == "digit"]
        stats = engine.stats()
        if done(stats):
            return digits + [(call, key) for kind, call, key in engine.events() if kind == "digit"]
        assert time.monotonic() < deadline, f"{stats}"
        time.sleep(0.005)


def spray(engine: dialer_core.MediaEngine, sock: socket.socket, target: tuple[str, int], ssrc: int, events: int,
          first_ts: int) -> list[tuple[int, str]]:
    """`events` keys "1" from `sock`, each read by the engine before the next is sent (so that
    none overflows the socket's buffer); returns the digits they made."""
    digits = []
    for i in range(events):
        seen = engine.stats()
        done = seen.get("rejected_source", 0) + seen["frames_received"] + 8  # taken or refused, either way read
        for p in key_packets(ssrc, i * 8, first_ts + i * 800, 1):
            sock.sendto(p, target)
        digits += until(engine, lambda s: s.get("rejected_source", 0) + s["frames_received"] >= done)
    return digits


def test_keys_sprayed_from_another_host_or_port_are_not_the_subscribers(
        engine: dialer_core.MediaEngine, leg: Callable[[int], Leg]) -> None:
    sub = leg(0x5B5C)
    attacker, neighbour = udp(OTHER_HOST), udp(LOCAL)
    try:
        # Before the far end sent anything: 50 keys "1" from another host.
        assert spray(engine, attacker, sub.ours, 0xA77A, 50, 0) == []
        # The subscriber presses 2: heard once. Its first packet latched its port.
        sub.press(2)
        assert until(engine, lambda s: s["digits"] >= 1) == [(sub.call, "2")]
        # Now another port of the far end's own host, with the subscriber's SSRC, counts no more.
        assert spray(engine, neighbour, sub.ours, sub.ssrc, 50, 80_000) == []
        stats = engine.stats()
        assert (stats["digits"], stats["rejected_source"], stats["rejected_ssrc"]) == (1, 800, 0)
    finally:
        attacker.close()
        neighbour.close()


def test_the_far_end_may_send_from_another_port_than_its_sdp(engine: dialer_core.MediaEngine,
                                                              leg: Callable[[int], Leg]) -> None:
    # As a phone behind a NAT does, or an SBC that sends from another port than it receives on:
    # the c= IP counts, from whatever port its first packet comes.
    sub = leg(0x1111)
    sub.sender = udp(LOCAL)
    sub.audio(3)
    sub.press(1)
    assert until(engine, lambda s: s["digits"] >= 1) == [(sub.call, "1")]
    assert engine.stats()["rejected_source"] == 0


def test_a_second_stream_from_the_far_ends_address_is_rejected(engine: dialer_core.MediaEngine,
                                                                leg: Callable[[int], Leg]) -> None:
    sub = leg(0x2222)
    sub.audio(1)
    # While the subscriber's stream is live (a frame every 20 ms), another SSRC from its very
    # address and port (what an attacker spoofing it would send) is dropped.
    for i in range(10):
        sub.audio(1)
        for p in key_packets(0xBAD, i * 8, i * 800, 1):
            sub.far.sendto(p, sub.ours)
        time.sleep(0.02)  # the subscriber's 20 ms frame pace
    assert until(engine, lambda s: s.get("rejected_ssrc", 0) >= 80) == []
    sub.press(3)
    assert until(engine, lambda s: s["digits"] >= 1) == [(sub.call, "3")]


def flood(target: tuple[str, int], packets: int, per_s: int) -> None:
    """Junk, forged events (key 1, random SSRCs) and forged audio at `per_s` packets a second,
    from another host and from another port of the far end's host."""
    socks = [udp(OTHER_HOST), udp(LOCAL)]
    forged = [b"\x00" * 20, rtp(0xF00D, 1, 1, 0, b"\xff" * 160)]
    start = time.monotonic()
    try:
        for i in range(packets):
            if i % 200 == 0:  # paced in bursts of 200 (10 ms at 20,000/s)
                time.sleep(max(0.0, start + i / per_s - time.monotonic()))
            p = forged[i % 2] if i % 3 == 2 else key_packets(0xF000 + i % 97, i, i * 800, 1)[0]
            socks[i % 2].sendto(p, target)
    finally:
        for s in socks:
            s.close()


def test_a_flood_at_one_call_delays_no_other_call_and_leaves_its_keys(
        engine: dialer_core.MediaEngine, leg: Callable[[int], Leg]) -> None:
    engine.add_prompt("p", struct.pack("<h", 3000) * 8000 * 5)
    flooded, playing = leg(0x3333), leg(0x4444)
    flooded.audio(1)  # latched before the flood
    playing.audio(1)
    assert until(engine, lambda s: s["frames_received"] >= 2) == []
    engine.play(playing.call, ["p"])
    engine.reset_stats()
    t = threading.Thread(target=flood, args=(flooded.ours, 20_000, 20_000))
    t.start()
    # The flooded call's far end presses 2 in the middle of the flood.
    time.sleep(0.5)
    flooded.press(2)
    t.join(timeout=30)
    assert not t.is_alive()
    digits = until(engine, lambda s: s["digits"] >= 1)
    stats = engine.stats()
    assert digits == [(flooded.call, "2")], stats
    read = stats["rejected_source"] + stats["malformed"]
    assert 0 < read <= 20_000 and stats["budget_exhausted"] > 0, stats
    # The other call's frames left on time all along: the product's target is p99 <= 20 ms (an
    # idle engine does ~0.2 ms; this 2-core machine is shared with the flood and other tests).
    assert stats["frames_sent"] >= 40, stats
    assert stats["late_p99_ms"] <= 20.0, stats
    assert stats["frames_late_over_20ms"] <= stats["frames_sent"] // 100, stats


def test_metrics_show_what_was_refused() -> None:
    async def main() -> str:
        hub = MediaHub(dialer_core.MediaEngine())
        sub = Leg(hub.engine, 0x5555)
        attacker = udp(OTHER_HOST)
        try:
            spray(hub.engine, attacker, sub.ours, 0xA77A, 2, 0)
            sub.press(4)
            until(hub.engine, lambda s: s["digits"] >= 1)
            return Metrics().text()
        finally:
            attacker.close()
            sub.close()
            hub.shutdown()

    text = uvloop.run(main())
    for line in ['dialer_media_rtp_rejected_total{reason="source"} 16.0', 'dialer_media_rtp_rejected_total{reason="ssrc"} 0.0',
                 "dialer_media_digits_total 1.0", "dialer_media_rtp_malformed_total 0.0"]:
        assert line in text.splitlines(), text
    assert "dialer_media" not in Metrics().text(), "no engine open: no media figures"

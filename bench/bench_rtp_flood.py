"""Live calls under an RTP flood: forged keys must never count, and no call's frames may go late.

N calls (500 under `make bench`) each play a prompt on our media engine to a far end of their own
(one media engine in another process: a 20 ms frame to each call every 20 ms, from the port our
call was connected to). The same run measures two phases of the same length:

1. quiet: the reference. Midway every far end presses 3.
2. flood: a third process sends 20,000 datagrams/s (junk, forged RFC 4733 key 1 events with
   random SSRCs, forged audio) from another host address (127.0.0.2) and from other ports of the
   far ends' host: half sprayed over every port of our RTP range, half at one call's port (past
   its read budget). Midway every far end presses 2.

Printed: forged keys accepted (must be 0), genuine keys heard, frame lateness p50/p99/max and
the media thread's CPU in each phase, and what the engine refused. Loopback only; every phase,
process and wait is bounded, and the run stops by itself.

    python -m bench.bench_rtp_flood far-ends    # the far ends (stdin: ports as JSON; then commands)
    python -m bench.bench_rtp_flood flood ARGS  # the flood (ARGS: JSON {ports, focus, per_s, seconds})
"""

from __future__ import annotations

import json
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dialer_core

# The far-end and flood processes run this module too: what only the benchmark needs (sipp, the
# gateway, pytest) is imported in the functions that use it.

ROOT = Path(__file__).resolve().parents[1]
PORTS = (42000, 43999)  # our RTP range: 1,000 even ports


def far_ends() -> None:
    """Process: one far end per port of ours; `press K` sends key K from every one."""
    ports = json.loads(sys.stdin.readline())
    engine = dialer_core.MediaEngine()
    calls = []
    for port in ports:
        call, own = engine.open()
        engine.connect(call, "127.0.0.1", int(port))
        calls.append((call, own))
    print(json.dumps([own for _, own in calls]), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "press":
            for call, _ in calls:
                engine.send_digits(call, cmd[1], 100)
        print("ok", flush=True)
    engine.shutdown()


def flood(ports: list[int], focus: int, per_s: int, seconds: float) -> None:
    """Process: `per_s` datagrams a second for `seconds`, half over `ports`, half at `focus`;
    prints how many it sent."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    socks[0].bind(("127.0.0.2", 0))
    socks[1].bind(("127.0.0.1", 0))
    print("ready", flush=True)
    rng = random.Random(7)
    junk = b"\x00" * 20
    audio = struct.pack("!BBHII", 0x80, 0, 1, 1, 0xF00D) + b"\xff" * 160
    start = time.monotonic()
    sent = 0
    total = int(per_s * seconds)
    while sent < total:
        if sent % 100 == 0:  # paced in bursts of 100 (5 ms at 20,000/s)
            time.sleep(max(0.0, start + sent / per_s - time.monotonic()))
        port = focus if sent % 2 else rng.choice(ports)
        kind = sent % 3
        if kind == 0:
            pkt = junk
        elif kind == 1:
            pkt = audio
        else:
            pkt = struct.pack("!BBHIIBBH", 0x80, 0x80 | 101, sent & 0xFFFF, sent * 800 & 0xFFFFFFFF,
                              rng.getrandbits(32), 1, 10, 160)
        try:
            socks[sent % 2].sendto(pkt, ("127.0.0.1", port))
        except OSError:
            pass  # an ICMP error from a port nobody holds
        sent += 1
    print(sent, flush=True)


class FarEnds:
    def __init__(self, ports: list[int]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.bench_rtp_flood", "far-ends"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(ports) + "\n")
        self.proc.stdin.flush()
        self.ports: list[int] = json.loads(self.proc.stdout.readline())

    def press(self, key: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"press {key}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def phase(engine: dialer_core.MediaEngine, far: FarEnds, key: str, seconds: float, calls: int
          ) -> tuple[dialer_core.MediaStats, float, dict[str, int]]:
    """`seconds` of the calls as they are, every far end pressing `key` midway; the engine's
    totals, the media thread's cores, and the keys heard (by key), waiting up to 3 s for them."""
    from bench.bench_media import media_thread_cpu

    engine.events()
    engine.reset_stats()
    cpu0, t0 = media_thread_cpu(), time.monotonic()
    time.sleep(seconds / 2)
    far.press(key)
    time.sleep(seconds / 2)
    stats, cores = engine.stats(), (media_thread_cpu() - cpu0) / (time.monotonic() - t0)
    keys: dict[str, int] = {}
    deadline = time.monotonic() + 3.0
    while keys.get(key, 0) < calls and time.monotonic() < deadline:
        for kind, _, k in engine.events():
            if kind == "digit":
                keys[k] = keys.get(k, 0) + 1
        time.sleep(0.01)
    return stats, cores, keys


def lateness(s: dialer_core.MediaStats) -> str:
    return (f"{s['late_p50_ms']:.1f} / {s['late_p99_ms']:.1f} / {s['late_max_ms']:.1f} ms; "
            f"{s['frames_late_over_20ms']:,} of {s['frames_sent']:,} frames late > 20 ms")


def run(calls: int, seconds: float, per_s: int) -> dict[str, Any]:
    from bench.bench_media import tone

    engine = dialer_core.MediaEngine(ports=PORTS)
    engine.add_prompt("p", tone(2 * seconds + 5))
    ours = [engine.open() for _ in range(calls)]
    far = FarEnds([port for _, port in ours])
    flooder = None
    try:
        for (call, _), port in zip(ours, far.ports):
            engine.connect(call, "127.0.0.1", port)
            engine.play(call, ["p"])
        time.sleep(0.5)  # every far end's first frame latched its call
        quiet = phase(engine, far, "3", seconds, calls)
        args = {"ports": list(range(PORTS[0], PORTS[1] + 1, 2)), "focus": ours[0][1], "per_s": per_s,
                "seconds": seconds}
        flooder = subprocess.Popen([sys.executable, "-m", "bench.bench_rtp_flood", "flood", json.dumps(args)],
                                   stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert flooder.stdout is not None and flooder.stdout.readline().strip() == "ready"
        flooded = phase(engine, far, "2", seconds, calls)
        out, _ = flooder.communicate(timeout=seconds + 30)
        return {"quiet": quiet, "flood": flooded, "sent": int(out)}
    finally:
        if flooder is not None:
            if flooder.poll() is None:
                flooder.kill()
                flooder.wait()
            if flooder.stdout is not None:
                flooder.stdout.close()
        far.stop()
        engine.shutdown()


def test_forged_keys_and_lateness_under_an_rtp_flood(benchmark: Any, full_size: bool) -> None:
    from bench.conftest import report

    calls, seconds, per_s = (500, 5.0, 20_000) if full_size else (50, 1.0, 20_000)
    r = benchmark.pedantic(lambda: run(calls, seconds, per_s), rounds=1, iterations=1)
    (qs, qcores, qkeys), (fs, fcores, fkeys) = r["quiet"], r["flood"]
    forged = fkeys.get("1", 0) + qkeys.get("1", 0)
    report(f"RTP flood: {calls:,} calls playing a prompt, far ends sending 20 ms frames, {seconds:g} s a phase", [
        ("quiet (reference, same run): late p50/p99/max", lateness(qs)),
        ("flood: late p50/p99/max", lateness(fs)),
        ("media thread CPU: quiet / flood", f"{qcores:.2f} / {fcores:.2f} cores"),
        ("flood sent (half at one call's port)", f"{r['sent']:,} datagrams ({per_s:,}/s)"),
        ("refused: source / SSRC / malformed", f"{fs['rejected_source']:,} / {fs['rejected_ssrc']:,} / {fs['malformed']:,}"),
        ("read budget used up / read past it", f"{fs['budget_exhausted']:,} times / {fs['backlog_reads']:,} datagrams"),
        ("forged keys accepted", f"{forged}"),
        ("genuine keys heard: quiet / flood", f"{qkeys.get('3', 0):,} / {fkeys.get('2', 0):,} of {calls:,}"),
    ])
    benchmark.extra_info.update(forged=forged, quiet_p99_ms=qs["late_p99_ms"], flood_p99_ms=fs["late_p99_ms"],
                                quiet_cores=qcores, flood_cores=fcores, correct=forged == 0)
    assert forged == 0
    assert qkeys.get("3", 0) == calls and fkeys.get("2", 0) == calls, (qkeys, fkeys)
    assert fs["rejected_source"] + fs["malformed"] > 0 and fs["budget_exhausted"] > 0, fs
    assert qs["send_errors"] == 0 and fs["send_errors"] == 0


if __name__ == "__main__":
    if sys.argv[1] == "far-ends":
        far_ends()
    else:
        a = json.loads(sys.argv[2])
        flood(a["ports"], a["focus"], a["per_s"], a["seconds"])

"""Sustained short calls: our UAC (uvloop, one process) against a sipp UAS, next to sipp's own UAC
against the same UAS in the same run.

Target (issue 4): at least 0.4 of sipp's rate, at least 1,000 calls/s per process, 0 failed.
Also reports CPU per 100 calls/s. Each call: INVITE, 180, 200, ACK, BYE, 200 (hung up at once).
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.conftest import report
from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp


async def our_run(addr: tuple[str, int], calls: int, in_flight: int) -> tuple[float, float, int, Any]:
    uac = await Uac.open(TrunkConfig(trunk=addr, local=("127.0.0.1", 0)))
    sem = asyncio.Semaphore(in_flight)
    answered = 0

    async def one(i: int) -> None:
        nonlocal answered
        async with sem:
            r = await uac.call(f"84{i:09d}", hold_s=0.0)
            answered += r.outcome is Outcome.ANSWERED

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    counters = uac.counters
    uac.close()
    return wall, cpu, answered, counters


def sipp_run(calls: int, in_flight: int, rate: int, workdir: Path) -> tuple[float, float, int]:
    """sipp's UAC at `rate` calls/s against a fresh sipp UAS: (wall, UAC CPU, exit code)."""
    uas = Sipp("uas", 10**9, workdir, timeout_s=600).start()
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(
            ["sipp", "-sn", "uac", f"{uas.addr[0]}:{uas.addr[1]}", "-i", "127.0.0.1", "-p", "0", "-r", str(rate),
             "-l", str(in_flight), "-m", str(calls), "-nostdin", "-timeout", "120s"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=150,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        uas.stop()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, p.returncode


def sipp_reference(calls: int, in_flight: int, workdir: Path) -> tuple[float, float, int]:
    """sipp to sipp at the highest of a few rates it runs cleanly (every call succeeds); sipp
    loses calls above its clean rate, so the reference is its best clean run."""
    for rate in (8000, 4000, 2500, 1500):
        wall, cpu, rc = sipp_run(calls, in_flight, rate, workdir)
        if rc == 0:
            return wall, cpu, rate
    return wall, cpu, 0


def test_sustained_calls_per_second_against_sipp(benchmark: Any, tmp_path: Path, full_size: bool) -> None:
    calls = 20_000 if full_size else 500
    in_flight = 500 if full_size else 100
    uas = Sipp("uas", 10**9, tmp_path, timeout_s=600).start()
    try:
        wall, cpu, answered, counters = benchmark.pedantic(
            lambda: uvloop.run(our_run(uas.addr, calls, in_flight)), rounds=1, iterations=1
        )
    finally:
        uas.stop()
    s_wall, s_cpu, rate = sipp_reference(calls, in_flight, tmp_path)
    ours, ref = calls / wall, calls / s_wall
    report(f"SIP UAC: {calls:,} short calls, {in_flight} in flight, against one sipp UAS", [
        ("ours (uvloop, one process)", f"{ours:,.0f} calls/s, {answered:,} answered, "
                                       f"{counters.sent - 3 * calls} retransmissions"),
        ("sipp UAC to a sipp UAS, same run", f"{ref:,.0f} calls/s (best clean run, at -r {rate})"),
        ("ratio", f"{ours / ref:.2f}   (target >= 0.4; and >= 1,000 calls/s)"),
        ("CPU per 100 calls/s: ours / sipp", f"{100 * cpu / calls * 100:.1f} % / {100 * s_cpu / calls * 100:.1f} % of a core"),
    ])
    benchmark.extra_info.update(calls_per_s=ours, sipp_calls_per_s=ref, ratio=ours / ref, correct=answered == calls)
    assert answered == calls and counters.malformed == 0
    assert rate > 0, "sipp itself ran no clean reference"
    if full_size:
        assert ours / ref >= 0.4

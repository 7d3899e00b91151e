"""What crash consistency costs one node (issue 19): an IVR campaign through `dialer serve` and a
sipp carrier, with dial marks and without (`--no-dial-marks`), one after the other on the same
Redis in the same run: Redis's own CPU per call (INFO cpu over the whole campaign, every command
of every role: claims, marks, completions, CDR records and their archiving, SMS requests, events,
live figures, leases), the node's CPU per call, and calls/s.

Target: the marks (dialled in the claim script, answered marks, the agent's leg) cost under 10 %
of a call's Redis time. `make bench` runs four campaigns of 4,000 subscribers (with, without, with,
without) and reports medians; `make test` runs two small ones.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from api.auth import create_token
from api.demo import SCENARIO, cpu_seconds, free_port, start_node, stop
from api.embedded_redis import EmbeddedRedis
from bench.conftest import report

#: The carrier's answer by last digit (loadtest/sipp/uas_carrier.xml): 8 and 9 answer and press a
#: key (about 5 s a call, an SMS for 1), 1 busy, 6 unavailable, 5 declines, 3 invalid. Calls that
#: ring out or stay silent are left out: they only make the run longer.
DIGITS = "8889911653"


def campaign(api: httpx.Client, rows: int, cps: float) -> str:
    spec: dict[str, Any] = {
        "name": "marks bench", "mode": "ivr", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh",
        "windows": ["00:00-24:00"], "country": "VN", "max_attempts": 1, "retry_on": [],
        "pacing": {"max_channels": 2000, "max_cps": cps}, "ivr_script": "seed_survey",
        "sms": {"sender": "Operator", "template": "Thank you"},
    }
    r = api.post("/v1/campaigns", json=spec)
    r.raise_for_status()
    cid = str(r.json()["id"])
    # A new block of numbers per campaign: no subscriber is in two of them.
    base = int(time.time() * 1000) % 1000
    csv = "phone\n" + "".join(f"09{base:03d}{i:04d}{DIGITS[i % len(DIGITS)]}\n" for i in range(rows))
    rep = api.post(f"/v1/campaigns/{cid}/contacts", content=csv.encode()).json()
    assert rep["accepted"] == rows, rep
    return cid


def one_run(redis_url: str, sip_port: int, state: Path, rows: int, cps: float, marks: bool) -> dict[str, float]:
    """One campaign, start to completion, on a `dialer serve` of its own."""
    r = redis.Redis.from_url(redis_url)

    def redis_cpu() -> float:
        info = r.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    serve, base = start_node(redis_url, state, ["--trunk", f"127.0.0.1:{sip_port}", "--cps", str(cps),
                                               "--log-level", "warning", *([] if marks else ["--no-dial-marks"])])
    try:
        token, _ = create_token(redis_url, "admin", "bench", None)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
            cid = campaign(api, rows, cps)
            time.sleep(1.0)  # the node settles (its scans, the recorder) before the count starts
            c0, n0, t0 = redis_cpu(), cpu_seconds(serve.pid), time.monotonic()
            for action in ("approve", "start"):
                api.post(f"/v1/campaigns/{cid}/{action}").raise_for_status()
            deadline = t0 + 60 + 3 * rows / cps
            while api.get(f"/v1/campaigns/{cid}").json()["state"] != "completed":
                assert time.monotonic() < deadline, f"campaign not completed in {deadline - t0:.0f} s"
                time.sleep(0.2)
            wall = time.monotonic() - t0
            time.sleep(2.0)  # the recorder archives the last CDR records
            c1, n1 = redis_cpu(), cpu_seconds(serve.pid)
            stats = api.get(f"/v1/campaigns/{cid}/stats").json()
        calls = int(stats["attempted"])
        assert calls == rows, stats
        return {"redis_us": (c1 - c0) / calls * 1e6, "node_us": (n1 - n0) / calls * 1e6, "calls_s": calls / wall}
    finally:
        stop(serve)
        r.close()


def test_what_crash_consistency_costs_a_node(benchmark: Any, redis_instance: EmbeddedRedis, redis_url: str,
                                             tmp_path: Path, full_size: bool) -> None:
    rows, cps = (4000, 200.0) if full_size else (300, 100.0)
    order = [True, False, True, False] if full_size else [True, False]
    sip_port = free_port()
    with open(tmp_path / "sipp.stderr", "wb") as err:
        sipp = subprocess.Popen(["sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(sip_port), "-mp",
                                 str(free_port()), "-t", "u1", "-nostdin", "-timeout", "900s"],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    try:
        runs: list[tuple[bool, dict[str, float]]] = []

        def all_runs() -> None:
            for i, marks in enumerate(order):
                runs.append((marks, one_run(redis_url, sip_port, tmp_path / f"run{i}", rows, cps, marks)))

        benchmark.pedantic(all_runs, rounds=1, iterations=1)
    finally:
        stop(sipp)

    def median(marks: bool, key: str) -> float:
        return statistics.median(m[key] for w, m in runs if w == marks)

    with_r, without_r = median(True, "redis_us"), median(False, "redis_us")
    ratio = with_r / without_r
    benchmark.extra_info.update(redis_us_with=with_r, redis_us_without=without_r, ratio=ratio)
    report(f"crash consistency on one node: {len(order)} campaigns of {rows:,} calls at {cps:.0f} cps, "
           "alternately with and without dial marks", [
               ("Redis CPU per call, each run, us", ", ".join(
                   f"{m['redis_us']:.0f} ({'with' if w else 'without'})" for w, m in runs)),
               ("Redis CPU per call with / without marks, us", f"{with_r:.0f} / {without_r:.0f}"),
               ("ratio (target < 1.10)", f"{ratio:.3f}"),
               ("node CPU per call with / without, us",
                f"{median(True, 'node_us'):.0f} / {median(False, 'node_us'):.0f}"),
               ("calls/s with / without (capped by the cps)",
                f"{median(True, 'calls_s'):.1f} / {median(False, 'calls_s'):.1f}"),
           ])
    # Every run placed every call; the figures are for reading (a noisy machine), not a gate.
    assert all(m["calls_s"] > 0 for _, m in runs)

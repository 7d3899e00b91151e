"""The million-call day (issue 18), end to end: contacts imported through the API and dialled by
`dialer serve` (claims, pacing, SIP to sipp carriers, the seed's IVR script with RTP for the
answered ones, outcomes, retries, CDR archive, SMS for those pressing 1), calls compressed to a
few seconds, on (a) one embedded-style Redis and one node, (b) the local 3-primary Redis Cluster
with 2 nodes. Beside each: sipp's own UAC placing the same calls through the same carrier at the
same caps (`loadtest/sipp/uac_mix.xml`, answered calls held as long as ours were).

Printed per configuration: wall time, calls/s sustained, CPU per call of `dialer serve` and of
Redis, Redis memory, CDR rows, and the accounting, counted at both ends: contacts done (final +
exhausted) = imported, 0 lost, 0 over `max_attempts` (CDR), the INVITEs the carriers received
(sipp's own statistics) = the calls we placed, SMS received by the SMSC = SMS recorded sent, none
doubled.

    python -m bench.bench_million --contacts 1000000        # the day (about an hour a configuration)
    python -m bench.bench_million --contacts 100000 --config single
    make test: 200 contacts on each configuration, to keep the script working.

Targets on the 2-core machine: 1M calls in under 40 minutes on one node; dialer CPU under 2 ms a
call; Redis CPU under 100 us a call; the cluster run scales the node count without losing a call.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from api.auth import create_token
from api.demo import ROOT, cpu_seconds, free_port, start_node, start_smsc, stop
from api.embedded_redis import EmbeddedRedis
from store.local_cluster import RedisCluster, redis_cluster
from tests.support.sipp import Sipp

#: The carrier's answer by last digit (loadtest/sipp/uas_carrier.xml): 8 answers and presses 1
#: (an SMS), 9 answers and presses 2, 1 busy (retried once), 6 unavailable, 5 declines, 3 does
#: not exist. Ring-outs and silent answers are left out: they only stretch the day.
DIGITS = "8889911653"
MAX_ATTEMPTS = 2
UAC_MIX = ROOT / "loadtest" / "sipp" / "uac_mix.xml"
CARRIER = ROOT / "loadtest" / "sipp" / "uas_carrier.xml"


@dataclass
class Store:
    """Where the day runs: its URL and the redis-server processes behind it."""

    url: str
    pids: list[int]
    primaries: list[tuple[str, int]]


@dataclass
class Day:
    config: str
    contacts: int
    nodes: int
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def numbers(count: int, offset: int = 0) -> Iterator[str]:
    for i in range(offset, offset + count):
        yield f"09{i:07d}{DIGITS[i % len(DIGITS)]}"


def carrier_calls(stat_file: Path) -> int:
    """Calls the carrier's sipp received (its TotalCallCreated), from its -trace_stat file."""
    lines = [ln for ln in stat_file.read_text().splitlines() if ln.strip()]
    head, last = lines[0].split(";"), lines[-1].split(";")
    return int(last[head.index("TotalCallCreated")])


def node_metrics(base: str, token: str) -> dict[str, float]:
    """A node's media counters and how late its event loop ran (from its /metrics)."""
    import re

    text = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text

    def value(pattern: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{pattern} (\S+)$", text, re.M))

    lag = {float(le): float(v) for le, v in
           re.findall(r'^dialer_event_loop_lag_seconds_bucket\{le="([0-9.e+-]+)"\} (\S+)$', text, re.M)}
    count = value("dialer_event_loop_lag_seconds_count") or 1.0
    return {"rtp_rejected": value(r"dialer_media_rtp_rejected_total\{[^}]*\}"),
            "rtp_malformed": value("dialer_media_rtp_malformed_total"), "digits": value("dialer_media_digits_total"),
            "budget_exhausted": value("dialer_media_read_budget_exhausted_total"),
            "lag_over_100ms": 1 - max((v for le, v in lag.items() if le <= 0.1), default=count) / count,
            "lag_over_1s": 1 - max((v for le, v in lag.items() if le <= 1.0), default=count) / count}


def redis_memory(store: Store) -> int:
    total = 0
    for host, port in store.primaries:
        with redis.Redis(host=host, port=port) as c:
            total += int(c.info("memory")["used_memory"])
    return total


def run_day(store: Store, config: str, contacts: int, nodes: int, cps: float, channels: int, work: Path,
            progress: bool = True) -> Day:
    day = Day(config, contacts, nodes)
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        carriers = []
        for i in range(nodes):
            stat = work / f"carrier{i}.csv"
            s = Sipp("uas_carrier.xml", 10**9, work, timeout_s=7200,
                     extra=["-trace_stat", "-stf", str(stat), "-fd", "1"]).start()
            stack.callback(s.stop)
            carriers.append((s, stat))
        smsc, smsc_port = start_smsc(work)
        smsc_log = work / "smsc.jsonl"
        stack.callback(stop, smsc)
        procs = []
        for i in range(nodes):
            proc, base = start_node(store.url, work / f"node{i}", [
                "--trunk", f"127.0.0.1:{carriers[i][0].port}", "--smsc", f"127.0.0.1:{smsc_port}",
                "--cps", str(cps / nodes), "--channels", str(max(1, channels // nodes)), "--log-level", "warning"])
            stack.callback(stop, proc)
            procs.append((proc, base))
        token, _ = create_token(store.url, "admin", "bench-million", None)
        api = stack.enter_context(httpx.Client(base_url=procs[0][1], headers={"Authorization": f"Bearer {token}"},
                                               timeout=600))
        partitions = 1 if nodes == 1 else 3 * nodes
        spec: dict[str, Any] = {
            "name": f"million-call day ({config})", "mode": "ivr", "caller_id": "+84281234567",
            "timezone": "Asia/Ho_Chi_Minh", "windows": ["00:00-24:00"], "country": "VN", "max_attempts": MAX_ATTEMPTS,
            "retry_on": ["busy"], "retry_delay_s": 2.0, "partitions": partitions,
            "pacing": {"max_channels": channels, "max_cps": cps}, "ivr_script": "seed_survey",
            "sms": {"sender": "Operator", "template": "Thank you"},
        }
        r = api.post("/v1/campaigns", json=spec)
        r.raise_for_status()
        cid = str(r.json()["id"])
        csv = work / "contacts.csv"
        with open(csv, "w") as f:
            f.write("phone\n")
            f.writelines(n + "\n" for n in numbers(contacts))
        t = time.monotonic()

        def chunks() -> Iterator[bytes]:
            with open(csv, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        rep = api.post(f"/v1/campaigns/{cid}/contacts", content=chunks()).json()
        import_s = time.monotonic() - t
        if rep.get("accepted") != contacts:
            day.problems.append(f"import accepted {rep.get('accepted')} of {contacts}: {rep}")
        time.sleep(1.0)  # the nodes settle (scans, recorders) before the count starts

        def redis_cpu() -> float:
            return sum(cpu_seconds(pid) for pid in store.pids)

        c0, n0, t0 = redis_cpu(), [cpu_seconds(p.pid) for p, _ in procs], time.monotonic()
        for action in ("approve", "start"):
            api.post(f"/v1/campaigns/{cid}/{action}").raise_for_status()
        limit = t0 + 120 + 4 * contacts / cps
        last_print = t0
        while True:
            s = api.get(f"/v1/campaigns/{cid}/stats").json()
            if s["state"] == "completed":
                break
            if time.monotonic() > limit:
                day.problems.append(f"not completed in {limit - t0:.0f} s: {s['queue']}")
                break
            if progress and time.monotonic() - last_print >= 30:
                last_print = time.monotonic()
                live = s.get("live") or {}
                print(f"   {config}: {time.monotonic() - t0:6.0f} s  attempts {s['attempted']:>9,}  "
                      f"in progress {live.get('calls_in_progress', 0):>5}  cps {float(live.get('cps') or 0):6.0f}  "
                      f"ready {s['queue']['ready']:>9,}", file=sys.stderr, flush=True)
            time.sleep(1.0)
        wall = time.monotonic() - t0
        c1, n1 = redis_cpu(), [cpu_seconds(p.pid) for p, _ in procs]
        seen = [node_metrics(base, token) for _, base in procs]
        memory = redis_memory(store)
        stats = api.get(f"/v1/campaigns/{cid}/stats").json()
        # The recorders archive the last records, the SMS sender its last receipts.
        archives = [work / f"node{i}" / "cdr.sqlite3" for i in range(nodes)]

        def archived() -> list[int]:
            out = []
            for a in archives:
                db = sqlite3.connect(f"file:{a}?mode=ro", uri=True)
                out.append(db.execute("SELECT COUNT(*) FROM cdr WHERE campaign = ? AND kind = 'call'", (cid,)).fetchone()[0])
                db.close()
            return out

        calls = int(stats["attempted"])
        settle = time.monotonic() + 60
        while min(archived()) < calls and time.monotonic() < settle:
            time.sleep(1.0)
        time.sleep(2.0)
        db = sqlite3.connect(f"file:{archives[0]}?mode=ro", uri=True)
        cdr_rows = db.execute("SELECT COUNT(*) FROM cdr WHERE campaign = ?", (cid,)).fetchone()[0]
        cdr_calls = db.execute("SELECT COUNT(*) FROM cdr WHERE campaign = ? AND kind = 'call'", (cid,)).fetchone()[0]
        over = db.execute("SELECT COUNT(*) FROM (SELECT number FROM cdr WHERE campaign = ? AND kind = 'call' "
                          "GROUP BY number HAVING COUNT(*) > ?)", (cid, MAX_ATTEMPTS)).fetchone()[0]
        sms_sent = db.execute("SELECT COUNT(DISTINCT number) FROM cdr WHERE campaign = ? AND kind = 'sms' "
                              "AND sms_status IN ('sent', 'delivered')", (cid,)).fetchone()[0]
        # What the carrier's subscribers pressed: every answered ...8 presses 1 (the script's SMS).
        presses = db.execute("SELECT COUNT(*), SUM(dtmf LIKE '1%') FROM cdr WHERE campaign = ? AND kind = 'call' "
                             "AND number LIKE '%8' AND answered_at IS NOT NULL", (cid,)).fetchone()
        held = db.execute("SELECT AVG(ended_at - answered_at) FROM cdr WHERE campaign = ? AND kind = 'call' "
                          "AND answered_at IS NOT NULL", (cid,)).fetchone()[0] or 0.0
        db.close()
        sent_to = [json.loads(ln).get("to") for ln in smsc_log.read_text().splitlines() if ln.strip()] if smsc_log.exists() else []
        completed = stats["completed"]
        done = int(completed.get("final", 0)) + int(completed.get("exhausted", 0))
        left = sum(stats["queue"].values())
        far_end = sum(carrier_calls(stat) for _, stat in carriers)
        day.figures = {
            "imported": rep.get("accepted", 0), "import_s": import_s, "wall_s": wall, "calls": calls,
            "calls_s": calls / wall, "node_ms_per_call": 1000 * sum(b - a for a, b in zip(n0, n1)) / max(calls, 1),
            "redis_us_per_call": 1e6 * (c1 - c0) / max(calls, 1), "redis_memory": memory, "cdr_rows": cdr_rows,
            "archives": archived(), "done": done, "left": left, "lost": contacts - done - left, "over_max": over,
            "far_end_invites": far_end, "sms_recorded": sms_sent, "sms_received": len(sent_to),
            "sms_doubled": len(sent_to) - len(set(sent_to)), "answered_held_s": held,
            "redis_processes": len(store.pids), "partitions": partitions,
            "presses_sent": int(presses[0] or 0), "presses_heard": int(presses[1] or 0),
            "media": {k: sum(m[k] for m in seen) for k in ("rtp_rejected", "rtp_malformed", "digits", "budget_exhausted")},
            "lag_over_100ms": max(m["lag_over_100ms"] for m in seen), "lag_over_1s": max(m["lag_over_1s"] for m in seen),
        }
        fig = day.figures
        for what, ok in [("contacts done + left = imported", fig["lost"] == 0), ("none left in the queue", fig["left"] == 0),
                         ("none over max_attempts", fig["over_max"] == 0),
                         ("carrier's INVITEs = calls placed", far_end == calls == cdr_calls),
                         ("SMS received = recorded, none doubled", fig["sms_received"] == sms_sent and fig["sms_doubled"] == 0),
                         ("every archive holds every call", all(a == calls for a in fig["archives"])),
                         ("every press of 1 heard", fig["presses_heard"] == fig["presses_sent"])]:
            if not ok:
                day.problems.append(what)
        for i in range(nodes):
            if "Traceback" in (work / f"node{i}" / "serve.log").read_text(errors="replace"):
                day.problems.append(f"a Traceback in node{i}'s log")
    return day


def reference(calls: int, cps: float, channels: int, hold_s: float, work: Path) -> dict[str, float]:
    """sipp's UAC placing `calls` of the same numbers through a fresh carrier at the same caps,
    answered calls held `hold_s`: its wall time, calls/s and CPU per call."""
    work.mkdir(parents=True, exist_ok=True)
    inf = work / "numbers.csv"
    with open(inf, "w") as f:
        f.write("SEQUENTIAL\n")
        f.writelines(n + ";\n" for n in numbers(calls))
    carrier = Sipp("uas_carrier.xml", 10**9, work, timeout_s=7200).start()
    try:
        t0 = time.monotonic()
        before = os.times()
        p = subprocess.run(["sipp", "-sf", str(UAC_MIX), f"127.0.0.1:{carrier.port}", "-i", "127.0.0.1", "-p", "0",
                            "-mp", str(free_port()), "-inf", str(inf), "-m", str(calls), "-r", str(cps), "-l", str(channels),
                            "-d", str(int(hold_s * 1000)), "-nostdin", "-timeout", f"{int(60 + 4 * calls / cps)}s"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120 + 4 * calls / cps)
        wall = time.monotonic() - t0
        after = os.times()
    finally:
        carrier.stop()
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return {"calls": calls, "wall_s": wall, "calls_s": calls / wall, "cpu_ms_per_call": 1000 * cpu / calls, "rc": p.returncode}


def report_day(day: Day, ref: dict[str, float]) -> list[tuple[str, str]]:
    f = day.figures
    return [
        ("contacts imported (through the API)", f"{f['imported']:,} in {f['import_s']:.1f} s"),
        ("wall time, dialling", f"{f['wall_s']:,.0f} s ({f['wall_s'] / 60:.1f} min); sipp's UAC, same calls and caps: "
                                f"{ref['wall_s'] * f['calls'] / ref['calls']:,.0f} s (scaled from {ref['calls']:,})"),
        ("calls placed; calls/s sustained", f"{f['calls']:,}; {f['calls_s']:,.0f} (sipp's UAC: {ref['calls_s']:,.0f})"),
        ("dialer serve CPU per call", f"{f['node_ms_per_call']:.2f} ms over {day.nodes} node(s) (target < 2; sipp's UAC "
                                      f"{ref['cpu_ms_per_call']:.2f} ms, no media)"),
        ("Redis CPU per call", f"{f['redis_us_per_call']:,.0f} us over {f['redis_processes']} process(es) (target < 100)"),
        ("Redis memory at the end", f"{f['redis_memory'] / 2**20:,.0f} MiB"),
        ("CDR rows (calls + SMS)", f"{f['cdr_rows']:,}; each archive's calls: {', '.join(f'{a:,}' for a in f['archives'])}"),
        ("accounting", f"done {f['done']:,} + left {f['left']:,} of {f['imported']:,}: lost {f['lost']:,}; "
                       f"over max_attempts {f['over_max']:,}"),
        ("the carriers' own count of INVITEs", f"{f['far_end_invites']:,} (calls placed {f['calls']:,})"),
        ("answered ...8 (the carrier presses 1): heard", f"{f['presses_heard']:,} of {f['presses_sent']:,} "
                                                         f"({f['presses_heard'] / max(f['presses_sent'], 1):.1%})"),
        ("media engine: RFC 4733 keys heard; RTP rejected", f"{f['media']['digits']:,.0f}; {f['media']['rtp_rejected']:,.0f} "
                                                             f"(budget exhausted {f['media']['budget_exhausted']:,.0f})"),
        ("event loop late > 100 ms / > 1 s (worst node)", f"{f['lag_over_100ms']:.1%} / {f['lag_over_1s']:.1%} of 100 ms ticks"),
        ("SMS: SMSC received / recorded sent / doubled", f"{f['sms_received']:,} / {f['sms_recorded']:,} / {f['sms_doubled']}"),
        ("problems", "none" if not day.problems else "; ".join(day.problems)),
    ]


@contextmanager
def single_store(work: Path) -> Iterator[Store]:
    port = free_port()
    r = EmbeddedRedis(work / "redis", port=port)
    url = r.start()
    try:
        assert r.pid is not None
        yield Store(url, [r.pid], [("127.0.0.1", port)])
    finally:
        r.stop()


def cluster_store(cluster: RedisCluster) -> Store:
    primaries = [(a.split(":")[0], int(a.split(":")[1])) for a in cluster.primaries()]
    return Store(cluster.url, [n.proc.pid for n in cluster.nodes], primaries)


def run(configs: list[str], contacts: int, cps: float, channels: int, work: Path,
        cluster: RedisCluster | None = None) -> list[tuple[Day, dict[str, float]]]:
    out = []
    for config in configs:
        with ExitStack() as stack:
            if config == "single":
                store, nodes = stack.enter_context(single_store(work / config)), 1
            else:
                c = cluster if cluster is not None else stack.enter_context(redis_cluster(work / config / "cluster"))
                store, nodes = cluster_store(c), 2
            day = run_day(store, config, contacts, nodes, cps, channels, work / config)
        ref = reference(min(contacts, 20_000), cps, channels, day.figures.get("answered_held_s", 1.0), work / f"{config}-ref")
        out.append((day, ref))
        print(f"\n== the million-call day, {config}: {contacts:,} contacts, {nodes} node(s), "
              f"{day.figures.get('partitions')} partition(s), caps {cps:,.0f} calls/s and {channels:,} channels")
        for k, v in report_day(day, ref):
            print(f"   {k:<46} {v}")
    return out


def test_a_small_day_on_each_configuration(redis_cluster: RedisCluster, tmp_path: Path, full_size: bool) -> None:
    """`make test`: a small day on each configuration keeps this script working (the full day
    takes an hour a configuration: `python -m bench.bench_million`)."""
    contacts = 20_000 if full_size else 200
    days = run(["single", "cluster"], contacts, 200.0, 400, tmp_path, cluster=redis_cluster)
    for day, ref in days:
        assert not day.problems, (day.config, day.problems)
        assert ref["rc"] == 0, ref


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--config", choices=["single", "cluster", "both"], default="both")
    p.add_argument("--cps", type=float, default=1000.0, help="the campaign's and the nodes' calls/s cap (default 1000)")
    p.add_argument("--channels", type=int, default=4000, help="calls in progress at most (default 4000)")
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-million-"))
    configs = ["single", "cluster"] if a.config == "both" else [a.config]
    try:
        days = run(configs, a.contacts, a.cps, a.channels, work)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(not d.problems for d, _ in days) else 1


if __name__ == "__main__":
    raise SystemExit(main())

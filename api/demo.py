"""`dialer demo` (`make demo`): the seed's voice campaign end to end, scaled down.

Everything is real and runs on loopback: an embedded redis-server; a simulated carrier (sipp
running `loadtest/sipp/uas_carrier.xml`: the dialled number's last digit decides whether the
subscriber answers and presses 1 or 2 by RFC 4733, stays silent, is busy, does not answer,
declines, or the number does not exist); the SMSC simulator (`loadtest/smsc.py`); and
`dialer serve --trunk ... --smsc ...`, which runs the API, the pacer, the SIP gateway with its
media engine, the CDR recorder and the SMS sender. The demo generates the subscribers, loads a
do-not-call list, then creates, approves and starts the seed campaign through the HTTP API
(exclusions VIP/GOLD/DIAMOND, two calling windows compressed into minutes, two attempts, the
greeting / press-1 / thank-you script, an SMS on press 1), shows progress, and ends with a
results table and the exported CSV. It stops every process it started.

With `--cluster` the same campaign runs on a local Redis Cluster (3 primaries + 3 replicas of
redis-server, `store/local_cluster.py`) instead of the embedded Redis, dialled by two `dialer serve`
nodes sharing its 6 partitions, each with half the calls per second and channels; the table adds
what each node did and checks that both CDR archives hold every record.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dialer_core
import httpx

from api.auth import create_token
from api.embedded_redis import EmbeddedRedis
from store.local_cluster import redis_cluster

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "loadtest" / "sipp" / "uas_carrier.xml"
TZ = "Asia/Ho_Chi_Minh"

#: The carrier's subscribers by the last digit of their number: (digit, share, what they do).
CARRIER_MIX = [
    ("8", 0.30, "answers, presses 1"),
    ("9", 0.15, "answers, presses 2"),
    ("0", 0.10, "answers, stays silent"),
    ("1", 0.10, "busy (486)"),
    ("2", 0.10, "rings out (CANCEL after the ring timeout)"),
    ("6", 0.10, "unavailable (480)"),
    ("3", 0.08, "number does not exist (404)"),
    ("5", 0.07, "declines (603)"),
]
EXCLUDED_SEGMENTS = ("VIP", "GOLD", "DIAMOND")
#: With --cluster: the dialer nodes, and the campaign's partitions (a multiple of the cluster's 3
#: primaries, 3 per node: docs/scale.md).
CLUSTER_NODES = ("a", "b")
CLUSTER_PARTITIONS = 6


def free_port() -> int:
    """A loopback port free for both TCP and UDP when asked (SIP and RTP are UDP; the API, SMPP
    and Redis TCP). Another process may still take it before it is bound: the starters below try
    again on another port when that happens."""
    import socket

    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def start_smsc(state: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The SMSC simulator (`loadtest/smsc.py`) on a free port, logging to `state`/smsc.jsonl."""
    out_path = state / "smsc.out"
    for tries_left in (3, 2, 1, 0):
        port = free_port()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "loadtest.smsc", "--port", str(port), "--log",
                                     str(state / "smsc.jsonl")], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not out_path.read_text(errors="replace").startswith("ready"):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = out_path.read_text(errors="replace")
                stop(proc)
                if tries_left and "Address already in use" in text:
                    break  # taken between the pick and the bind: another port
                raise RuntimeError(f"the SMSC simulator did not start: {text}")
            time.sleep(0.05)
        else:
            return proc, port
    raise AssertionError("unreachable")


def start_node(redis_url: str, state: Path, args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """`dialer serve` with its own state directory (its CDR archive, its log `serve.log`) and
    `args`, on a free port; its base URL once it answers."""
    state.mkdir(parents=True, exist_ok=True)
    log = state / "serve.log"
    for tries_left in (3, 2, 1, 0):
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "api.cli", "--redis-url", redis_url, "--state-dir", str(state),
                                     "serve", "--port", str(port), *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, proc, log)
            return proc, base
        except RuntimeError:
            stop(proc)
            if not tries_left or "address already in use" not in log.read_text(errors="replace").lower():
                raise
    raise AssertionError("unreachable")


def subscribers(path: Path, dnc_path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """A CSV of `rows` subscribers whose last digits follow `CARRIER_MIX`, 3 % in excluded
    segments, and a do-not-call list holding 1 % of them."""
    rng = random.Random(seed)
    digits = [d for d, _, _ in CARRIER_MIX]
    weights = [w for _, w, _ in CARRIER_MIX]
    seen: set[str] = set()
    counts = {"rows": 0, "excluded_segment": 0, "dnc": 0}
    with open(path, "w") as out, open(dnc_path, "w") as dnc:
        out.write("phone,name,segment\n")
        while counts["rows"] < rows:
            number = f"09{rng.randrange(10**7):07d}{rng.choices(digits, weights)[0]}"
            if number in seen:
                continue
            seen.add(number)
            segment = rng.choice(EXCLUDED_SEGMENTS) if rng.random() < 0.03 else rng.choice(("SILVER", "BRONZE", "STANDARD"))
            counts["excluded_segment"] += segment in EXCLUDED_SEGMENTS
            out.write(f"{number},Subscriber {counts['rows'] + 1},{segment}\n")
            if rng.random() < 0.01:
                dnc.write(number + "\n")
                counts["dnc"] += 1
            counts["rows"] += 1
    return counts


#: The two calling windows, compressed: (opens, closes) in seconds from the start.
WINDOWS_S = ((0, 110), (130, 190))


def windows(now: datetime) -> list[str]:
    """Two calling windows compressed into minutes (`WINDOWS_S`), in the campaign's local time."""
    t0 = now.replace(microsecond=0)

    def hms(d: datetime) -> str:
        return d.strftime("%H:%M:%S")

    return [f"{hms(t0 + timedelta(seconds=a))}-{hms(t0 + timedelta(seconds=b))}" for a, b in WINDOWS_S]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dialer serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("dialer serve did not start within 60 s")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(rows: int = 20_000, keep: bool = False, cps: float = 200.0, channels: int = 2000, time_limit_s: float = 330.0,
        redis_url: str | None = None, cluster: bool = False) -> int:
    if cluster and redis_url is not None:
        print("dialer demo: --cluster starts its own Redis Cluster: not with --redis-url", file=sys.stderr)
        return 2
    for tool in ("sipp", "espeak-ng", "redis-server", *(("redis-cli",) if cluster else ())):
        if shutil.which(tool) is None:
            print(f"dialer demo: {tool} is not installed (`make setup` installs it)", file=sys.stderr)
            return 2
    state = Path(tempfile.mkdtemp(prefix="dialer-demo-"))
    out_dir = Path(tempfile.gettempdir())
    redis = EmbeddedRedis(state) if redis_url is None and not cluster else None
    procs: list[subprocess.Popen[Any]] = []
    started = time.monotonic()
    resources = ExitStack()
    try:
        print(f"dialer demo: the seed campaign, {rows:,} subscribers, everything on loopback (state in {state})")
        if redis is not None:
            redis_url = redis.start()
            print(f"  embedded redis-server at {redis_url}")
        redis_pids: list[int] = []
        if cluster:
            print("  starting a Redis Cluster: 3 primaries + 3 replicas ...", flush=True)
            local = resources.enter_context(redis_cluster(state / "cluster"))
            redis_url = local.url
            redis_pids = [n.proc.pid for n in local.nodes]
            print(f"  Redis Cluster ready: primaries {', '.join(sorted(local.primaries()))}; "
                  f"{len(local.nodes) - len(local.primaries())} replicas")
        assert redis_url is not None

        contacts, dnc = state / "subscribers.csv", state / "do-not-call.txt"
        made = subscribers(contacts, dnc, rows)
        lst = dialer_core.load_suppression_list(redis_url, "dnc", dnc, country="VN")
        print(f"  {made['rows']:,} subscribers ({made['excluded_segment']:,} VIP/GOLD/DIAMOND), "
              f"do-not-call list of {lst['total']:,}")
        print("  the carrier (sipp) by last digit: " + "; ".join(f"{d}: {what} ({w:.0%})" for d, w, what in CARRIER_MIX))

        sip_port = free_port()
        sipp = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(sip_port), "-mp", str(free_port()),
             "-t", "u1", "-nostdin"],
            cwd=state, stdout=subprocess.DEVNULL, stderr=open(state / "sipp.stderr", "wb"))
        procs.append(sipp)
        smsc, smsc_port = start_smsc(state)
        procs.append(smsc)
        # One node in the state directory; with --cluster, two, each in its own (its CDR archive,
        # its log), each with its share of the calls per second and channels.
        names = CLUSTER_NODES if cluster else ("",)
        nodes: dict[str, tuple[subprocess.Popen[bytes], Path, str]] = {}  # name -> process, its directory, its URL
        for name in names:
            node_dir = state / name if name else state
            serve, url = start_node(redis_url, node_dir, [
                "--trunk", f"127.0.0.1:{sip_port}", "--smsc", f"127.0.0.1:{smsc_port}", "--cps", str(cps / len(names)),
                "--channels", str(max(1, channels // len(names))), "--log-level", "info" if cluster else "warning"])
            procs.append(serve)
            nodes[name] = (serve, node_dir, url)
        base = nodes[names[0]][2]
        print(f"  sipp carrier on udp 127.0.0.1:{sip_port}, SMSC simulator on 127.0.0.1:{smsc_port}, "
              + (f"dialer serve on {base}" if not cluster else
                 "dialer serve nodes " + ", ".join(f"{n} on {url}" for n, (_, _, url) in nodes.items())))

        token, _ = create_token(redis_url, "admin", "demo", None)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        local_now = datetime.now(ZoneInfo(TZ))
        calling = windows(local_now)
        end_at = local_now.replace(microsecond=0) + timedelta(seconds=WINDOWS_S[-1][1])
        spec: dict[str, Any] = {
            "name": "Seed survey (demo)", "mode": "ivr", "caller_id": "+84281234567", "timezone": TZ,
            "windows": calling, "end_at": end_at.isoformat(), "country": "VN", "max_attempts": 2, "retry_delay_s": 30.0,
            "retry_on": ["no_answer", "busy", "interrupted"], "ring_timeout_s": 15.0, "suppression_lists": ["dnc"],
            "exclusions": ["segment in {VIP, GOLD, DIAMOND}"],
            "pacing": {"max_channels": channels, "max_cps": cps}, "ivr_script": "seed_survey",
            "sms": {"sender": "Operator", "template": "Cam on {name}: uu dai da duoc dang ky."},
        }
        if cluster:
            spec["partitions"] = CLUSTER_PARTITIONS
        r = api.post("/v1/campaigns", json=spec)
        r.raise_for_status()
        cid = r.json()["id"]
        with open(contacts, "rb") as f:
            rep = api.post(f"/v1/campaigns/{cid}/contacts", content=f.read()).json()
        print(f"\n1. campaign {cid}: calling windows {', '.join(calling)} ({TZ}), ends at {end_at:%H:%M:%S}; import: "
              f"{rep['accepted']:,} accepted, {rep['excluded']:,} excluded, {rep['suppressed']:,} on the do-not-call "
              f"list, {rep['duplicates']:,} duplicates, {rep['rejected']:,} rejected")
        for action in ("approve", "start"):
            api.post(f"/v1/campaigns/{cid}/{action}").raise_for_status()
        print("2. approved and started; progress every 5 s:")

        if redis is not None and redis.pid is not None:
            redis_pids = [redis.pid]
        t0 = time.monotonic()
        cpu0 = {name: cpu_seconds(proc.pid) for name, (proc, _, _) in nodes.items()}
        redis_cpu0 = sum(cpu_seconds(pid) for pid in redis_pids)
        peak_cps = 0.0
        state_now = "running"
        while time.monotonic() - started < time_limit_s:
            time.sleep(5.0)
            s = api.get(f"/v1/campaigns/{cid}/stats").json()
            state_now = s["state"]
            live = s.get("live") or {}
            peak_cps = max(peak_cps, float(live.get("cps") or 0.0))
            q = s["queue"]
            o = s["outcomes"]
            print(f"   {time.monotonic() - t0:5.0f} s  {state_now:<9} attempts {s['attempted']:>6,}  "
                  f"answered {o.get('answered', 0):>6,}  in progress {live.get('calls_in_progress', 0):>5}  "
                  f"cps {float(live.get('cps') or 0):>5.0f}  ready {q['ready']:>6,}  retry waiting "
                  f"{q['retry_waiting'] + q['retry_due']:>5,}", flush=True)
            if state_now in ("completed", "stopped"):
                break
        wall = time.monotonic() - t0
        cpu = {name: cpu_seconds(proc.pid) - cpu0[name] for name, (proc, _, _) in nodes.items()}
        redis_cpu = sum(cpu_seconds(pid) for pid in redis_pids) - redis_cpu0
        if state_now not in ("completed", "stopped"):
            print(f"   time limit ({time_limit_s:.0f} s) reached: stopping the campaign")
            api.post(f"/v1/campaigns/{cid}/stop")
            state_now = "stopped"
        time.sleep(2.0)  # the recorder commits the last CDRs, the SMS sender its last receipts

        csv_path = out_dir / f"dialer-demo-{cid}-results.csv"
        with api.stream("GET", f"/v1/campaigns/{cid}/results.csv") as resp, open(csv_path, "wb") as f:
            for chunk in resp.iter_bytes():
                f.write(chunk)
        stats = api.get(f"/v1/campaigns/{cid}/stats").json()
        api.close()
        table = results(nodes[names[0]][1] / "cdr.sqlite3", cid, stats, wall, peak_cps, sum(cpu.values()),
                        state / "smsc.jsonl", redis_cpu, len(redis_pids))
        if cluster:
            table += cluster_rows(cid, {name: (node_dir, cpu[name]) for name, (_, node_dir, _) in nodes.items()}, wall)
        print(f"\n3. results (campaign {state_now}):")
        for k, v in table:
            print(f"   {k:<40} {v}")
        print(f"\n   every call's record: {csv_path}")
        return 0
    finally:
        for p in reversed(procs):
            stop(p)
        if redis is not None:
            redis.stop()
        resources.close()  # the cluster's nodes
        if keep:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


def results(cdr_path: Path, cid: str, stats: dict[str, Any], wall: float, peak_cps: float, cpu: float,
            smsc_log: Path, redis_cpu: float, redis_processes: int) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{cdr_path}?mode=ro", uri=True)
    calls = db.execute("SELECT number, outcome, attempt, answers FROM cdr WHERE campaign = ? AND kind = 'call'", (cid,)).fetchall()
    sms_rows = dict(db.execute(
        "SELECT sms_status, COUNT(DISTINCT number) FROM cdr WHERE campaign = ? AND kind = 'sms' GROUP BY sms_status",
        (cid,)).fetchall())
    db.close()
    by: dict[str, int] = {}
    agreed = declined = 0
    for _, outcome, _, answers in calls:
        by[outcome] = by.get(outcome, 0) + 1
        a = json.loads(answers) if answers else {}
        agreed += a.get("agreed") == "yes"
        declined += a.get("agreed") == "no"
    attempts = len(calls)
    retried = sum(1 for _, _, attempt, _ in calls if attempt >= 2)
    subscribers = len({n for n, _, _, _ in calls})
    received = sum(1 for line in smsc_log.read_text().splitlines() if line.strip()) if smsc_log.exists() else 0
    live = stats.get("live") or {}
    return [
        ("subscribers dialled", f"{subscribers:,}"),
        ("attempts (calls placed)", f"{attempts:,}"),
        ("answered", f"{by.get('answered', 0) + by.get('answered_then_dropped', 0):,} "
                     f"({(by.get('answered', 0)) / max(attempts, 1):.0%} of attempts)"),
        ("  agreed (pressed 1)", f"{agreed:,}"),
        ("  declined (another key or none)", f"{declined:,}"),
        ("no answer (ring-out, 480)", f"{by.get('no_answer', 0):,}"),
        ("busy", f"{by.get('busy', 0):,}"),
        ("failed (invalid number, declined, trunk)", f"{sum(v for k, v in by.items() if k not in ('answered', 'answered_then_dropped', 'no_answer', 'busy')):,}"),
        ("retried (second attempts)", f"{retried:,}"),
        ("SMS sent / delivered", f"{sms_rows.get('sent', 0):,} / "
                                 f"{sms_rows.get('delivered', 0):,} (the SMSC took {received:,})"),
        ("abandon rate", f"{float(live.get('abandon_rate') or 0.0):.2%} (IVR: every answered call is served)"),
        ("CPS: average / peak (5 s)", f"{attempts / max(wall, 1e-9):,.0f} / {peak_cps:,.0f}"),
        ("dialer serve CPU", f"{cpu / max(wall, 1e-9):.2f} cores over {wall:.0f} s, "
                             f"{1000 * cpu / max(attempts, 1):.1f} ms per call"),
        (f"Redis CPU ({redis_processes} process{'es' if redis_processes != 1 else ''})",
         f"{redis_cpu / max(wall, 1e-9):.2f} cores, {1e6 * redis_cpu / max(attempts, 1):,.0f} us per call"),
        ("queue at the end", ", ".join(f"{k} {v:,}" for k, v in stats["queue"].items())),
    ]


def cluster_rows(cid: str, nodes: dict[str, tuple[Path, float]], wall: float) -> list[tuple[str, str]]:
    """What each node of a --cluster run did: the partitions it took (its log), its CPU, and how
    many records its CDR archive holds (each archive reads the whole stream: they must agree)."""
    import re

    rows: list[tuple[str, str]] = []
    held = {}
    for name, (node_dir, cpu) in nodes.items():
        log = (node_dir / "serve.log").read_text(errors="replace")
        taken = sorted({int(p) for p in re.findall(rf"campaign {cid} partition (\d+): taken by", log)})
        db = sqlite3.connect(f"file:{node_dir / 'cdr.sqlite3'}?mode=ro", uri=True)
        held[name] = db.execute("SELECT COUNT(*) FROM cdr WHERE campaign = ?", (cid,)).fetchone()[0]
        db.close()
        rows.append((f"node {name}", f"partitions {', '.join(map(str, taken)) or 'none'}; "
                                     f"CPU {cpu / max(wall, 1e-9):.2f} cores"))
    same = len(set(held.values())) == 1
    rows.append(("CDR archives (records)", ", ".join(f"{n} {count:,}" for n, count in held.items())
                 + ("" if same else "  <- DIFFERENT: see the nodes' logs")))
    return rows

"""`dialer demo --agents N` (`make demo-agents`): a predictive campaign with simulated agents.

The same real pieces as the voice demo - an embedded redis-server, a sipp carrier, `dialer serve
--trunk` - plus N agents: their phones are one sipp process (`loadtest/sipp/uas_agent.xml`: it
answers at once, talks with sipp's PCMA recording for a few seconds, hangs up), and a small bot
sets each call's disposition after a wrap-up, as an agent would on the agent screen (agreed,
declined, or a callback a minute later). The pacing engine dials ahead of the agents to keep them
busy while keeping abandoned calls under the 3 % target. After the time given, the campaign is
stopped, the calls in progress finish, and the results table shows connects, abandons, agent
occupancy and the connect time.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.auth import create_token
from api.demo import ROOT, SCENARIO, cpu_seconds, free_port, stop, wait_ready
from api.embedded_redis import EmbeddedRedis

#: The subscribers by the last digit of their number: (digit, share, what they do).
MIX = [("7", 0.45, "answers"), ("1", 0.15, "busy"), ("6", 0.25, "unavailable (480)"), ("3", 0.10, "invalid number"),
       ("5", 0.05, "declines (603)")]
TALK_MS = 6000
WRAP_S = 2.0


def bot(base: str, token: str, agents: list[str], stop_at: threading.Event, seed: int = 11) -> dict[str, int]:
    """Every agent sets its open call's disposition WRAP_S after it appears."""
    rng = random.Random(seed)
    seen: dict[str, float] = {}
    done: dict[str, int] = {}

    def run() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
            while not stop_at.is_set():
                try:
                    for a in agents:
                        call = api.get(f"/v1/agents/{a}").json().get("call")
                        if call and call not in seen:
                            seen[call] = time.monotonic()
                        elif call and time.monotonic() - seen[call] >= WRAP_S + TALK_MS / 1000:
                            r = rng.random()
                            body: dict[str, Any] = {"outcome": "agreed", "answers": {"interested": "yes"}}
                            if r > 0.5:
                                body = {"outcome": "declined", "answers": {"interested": "no"}}
                            if r > 0.95:
                                at = datetime.now(UTC) + timedelta(seconds=60)
                                body = {"outcome": "call_later", "callback_at": at.isoformat()}
                            if api.post(f"/v1/calls/{call}/disposition", json=body).status_code == 200:
                                done[body["outcome"]] = done.get(body["outcome"], 0) + 1
                except httpx.TransportError:
                    pass
                time.sleep(0.2)

    threading.Thread(target=run, daemon=True).start()
    return done


def run(agents: int = 10, rows: int = 1500, seconds: float = 120.0, keep: bool = False, redis_url: str | None = None) -> int:
    for tool in ("sipp", "espeak-ng", "redis-server"):
        if shutil.which(tool) is None:
            print(f"dialer demo: {tool} is not installed (`make setup` installs it)", file=sys.stderr)
            return 2
    state = Path(tempfile.mkdtemp(prefix="dialer-demo-agents-"))
    redis = EmbeddedRedis(state) if redis_url is None else None
    procs: list[subprocess.Popen[Any]] = []
    stop_bot = threading.Event()
    try:
        print(f"dialer demo --agents {agents}: a predictive campaign, {rows:,} customers, {agents} simulated agents "
              f"(talk {TALK_MS / 1000:g} s, wrap-up {WRAP_S:g} s), {seconds:g} s (state in {state})")
        if redis is not None:
            redis_url = redis.start()
        assert redis_url is not None
        rng = random.Random(5)
        numbers: set[str] = set()
        while len(numbers) < rows:
            numbers.add(f"09{rng.randrange(10**7):07d}{rng.choices([d for d, _, _ in MIX], [w for _, w, _ in MIX])[0]}")
        csv = ("phone,name\n" + "".join(f"{n},Customer {i}\n" for i, n in enumerate(sorted(numbers)))).encode()
        print("  the carrier (sipp) by last digit: " + "; ".join(f"{d}: {what} ({w:.0%})" for d, w, what in MIX))

        sip_port, phone_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            ["sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(sip_port), "-mp", str(free_port()), "-t", "u1",
             "-nostdin"], cwd=state, stdout=subprocess.DEVNULL, stderr=open(state / "sipp.stderr", "wb")))
        phone = state / "uas_agent.xml"
        phone.write_text((ROOT / "loadtest" / "sipp" / "uas_agent.xml").read_text().replace("@TALK_MS@", str(TALK_MS)))
        procs.append(subprocess.Popen(
            ["sipp", "-sf", str(phone), "-i", "127.0.0.1", "-p", str(phone_port), "-mp", str(free_port()), "-t", "u1",
             "-nostdin"], cwd=state, stdout=subprocess.DEVNULL, stderr=open(state / "phones.stderr", "wb")))
        api_port = free_port()
        serve_log = state / "serve.log"
        serve = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "--redis-url", redis_url, "--state-dir", str(state), "serve", "--port",
             str(api_port), "--trunk", f"127.0.0.1:{sip_port}", "--log-level", "warning"],
            cwd=ROOT, stdout=open(serve_log, "wb"), stderr=subprocess.STDOUT)
        procs.append(serve)
        base = f"http://127.0.0.1:{api_port}"
        wait_ready(base, serve, serve_log)
        token, _ = create_token(redis_url, "admin", "demo", None)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        ids = [f"agent{i:02d}" for i in range(1, agents + 1)]
        for a in ids:
            api.post("/v1/agents", json={"id": a, "name": a.title(), "sip_uri": f"sip:{a}@127.0.0.1:{phone_port}"}).raise_for_status()
        spec = {
            "name": "Contact centre (demo)", "mode": "predictive", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh",
            "windows": ["00:00-24:00"], "country": "VN", "max_attempts": 2, "retry_delay_s": 30.0, "ring_timeout_s": 15.0,
            "pacing": {"target_abandon_rate": 0.03, "max_channels": agents * 4, "max_cps": 30},
        }
        r = api.post("/v1/campaigns", json=spec)
        r.raise_for_status()
        cid = r.json()["id"]
        rep = api.post(f"/v1/campaigns/{cid}/contacts", content=csv).json()
        for a in ids:
            api.post(f"/v1/campaigns/{cid}/agents/{a}/join").raise_for_status()
        done = bot(base, token, ids, stop_bot)
        for action in ("approve", "start"):
            api.post(f"/v1/campaigns/{cid}/{action}").raise_for_status()
        print(f"\n1. campaign {cid}: {rep['accepted']:,} customers; {agents} agents joined; predictive, abandon target 3 %")
        print("2. progress every 5 s:")
        t0, cpu0 = time.monotonic(), cpu_seconds(serve.pid)
        while time.monotonic() - t0 < seconds:
            time.sleep(5.0)
            s = api.get(f"/v1/campaigns/{cid}/stats").json()
            live = s.get("live") or {}
            ag = live.get("agents") or {}
            print(f"   {time.monotonic() - t0:5.0f} s  calls {s['attempted']:>5,}  connected {live.get('connected', 0):>4}  "
                  f"abandoned {live.get('abandoned', 0):>3}  abandon rate {float(live.get('window_abandon_rate') or 0):6.2%}  "
                  f"agents ready/talking/wrap {ag.get('ready', 0)}/{ag.get('talking', 0)}/{ag.get('wrap', 0)}  "
                  f"calls in progress {live.get('calls_in_progress', 0)}", flush=True)
            if s["state"] == "completed":
                break
        wall = time.monotonic() - t0
        api.post(f"/v1/campaigns/{cid}/stop")
        deadline = time.monotonic() + 30  # the calls in progress end, the agents set their dispositions
        while time.monotonic() < deadline and any(api.get(f"/v1/agents/{a}").json().get("call") for a in ids):
            time.sleep(0.5)
        cpu = cpu_seconds(serve.pid) - cpu0
        live = (api.get(f"/v1/campaigns/{cid}/stats").json().get("live")) or {}
        api.close()
        time.sleep(1.5)
        print("\n3. results:")
        for k, v in results(state / "cdr.sqlite3", cid, agents, wall, cpu, live, done):
            print(f"   {k:<40} {v}")
        return 0
    finally:
        stop_bot.set()
        for p in reversed(procs):
            stop(p)
        if redis is not None:
            redis.stop()
        if keep:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


def results(cdr_path: Path, cid: str, agents: int, wall: float, cpu: float, live: dict[str, Any],
            done: dict[str, int]) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{cdr_path}?mode=ro", uri=True)
    rows = db.execute("SELECT outcome, answered_at, ended_at, detail FROM cdr WHERE campaign = ? AND kind = 'call'",
                      (cid,)).fetchall()
    db.close()
    calls = [r for r in rows if r[0] not in ("agreed", "declined", "call_later")]  # not the dispositions' records
    connected = [r for r in calls if r[0] == "connected"]
    abandoned = sum(r[0] == "abandoned" for r in calls)
    answered = len(connected) + abandoned
    talk = sum((r[2] or 0) - (r[1] or 0) for r in connected)
    waits = sorted(float(r[3].split(" ms after")[0].rsplit(" ", 1)[-1]) for r in connected if " ms after" in (r[3] or ""))
    occupancy = (talk + WRAP_S * len(connected)) / max(agents * wall, 1e-9)
    return [
        ("calls placed", f"{len(calls):,}"),
        ("answered", f"{answered:,}"),
        ("  connected to an agent", f"{len(connected):,}"),
        ("  abandoned (identification message)", f"{abandoned:,} ({abandoned / max(answered, 1):.2%} of answered; target 3 %)"),
        ("dispositions", ", ".join(f"{k} {v:,}" for k, v in sorted(done.items())) or "none"),
        ("connect time after the answer p50 / max", f"{waits[len(waits) // 2]:.0f} / {waits[-1]:.0f} ms" if waits else "-"),
        ("agent occupancy (talk + wrap-up)", f"{occupancy:.0%} of {agents} agents x {wall:.0f} s"),
        ("calls placed per connected call", f"{len(calls) / max(len(connected), 1):.2f}"),
        ("CPS average", f"{len(calls) / max(wall, 1e-9):.1f}"),
        ("dialer serve CPU", f"{cpu / max(wall, 1e-9):.2f} cores"),
    ]

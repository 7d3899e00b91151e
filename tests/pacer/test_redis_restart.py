"""redis-server dies in the middle of an IVR campaign, again and again: the campaign completes,
nobody is called beyond `max_attempts`, nobody who answered is called again, every subscriber
who pressed 1 gets exactly one SMS, and no call is left up. The carrier's own trace (sipp
`-trace_msg`) and the SMSC's log are the judges.

Three kinds of outage, mixed in one campaign (`OUTAGES`, eight in all), at whatever the node is
doing then (the node reaches Redis through the proxy for all three):
- `kill`: SIGKILL, restarted 1.5 s later from its AOF (everysec). What Redis acknowledged was
  written to the AOF file before the reply, so the kernel keeps it: nothing acknowledged is lost,
  but every connection breaks and every command in flight fails.
- `lose`: the AOF is copied, 1 s later redis-server is SIGKILLed and restarted from the copy:
  the last second of acknowledged writes is lost, as after a power cut with `everysec`.
- `cut`: the network between the node and Redis is cut (a proxy stops forwarding: no reset,
  replies just do not come), for 3 s (commands wait, then go through) or 12 s (past the 10 s
  command timeout and the 6 s partition lease: the node counts as dead meanwhile), then healed.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import create_token
from api.embedded_redis import EmbeddedRedis
from tests.pacer.test_runtime_e2e import create_running, defer, wait_for  # noqa: F401 (defer is a fixture)
from tests.support.api_server import api_server
from tests.support.redis_server import free_port
from tests.support.sipp import Sipp
from tests.support.smsc import smsc
from tests.support.tcp_proxy import CuttableProxy

#: In this order, 2.5 s apart: every kind meets the node in the state the one before left it.
OUTAGES = ["kill", "lose", "cut3", "kill", "lose", "cut12", "kill", "lose"]


def sigkill(server: EmbeddedRedis) -> None:
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    server.stop()  # reaps it


@pytest.mark.timeout(300)
def test_redis_dying_mid_campaign_calls_nobody_twice_and_loses_no_sms(tmp_path: Path, defer: Any) -> None:
    # ...8 answers and presses 1 (the SMS), ...9 answers and presses 2, ...1 is busy (retried once),
    # ...2 rings until the ring timeout (15 s), is CANCELled and retried once.
    numbers = [f"0906{i:05d}{d}" for i in range(12) for d in "8912"]
    server = EmbeddedRedis(tmp_path / "r", port=free_port())
    server.start()
    defer(server.stop)
    url = server.url
    assert server.port is not None
    proxy = CuttableProxy(("127.0.0.1", server.port)).__enter__()
    defer(lambda: proxy.__exit__(None, None, None))
    node_url = f"redis://127.0.0.1:{proxy.address[1]}"
    sipp = Sipp("uas_carrier.xml", 1000, tmp_path, timeout_s=280, extra=["-trace_msg"]).start()
    defer(sipp.stop)
    token, _ = create_token(url, "admin", "e2e", None)
    aof = server.data_dir / "appendonlydir"
    with smsc(tmp_path) as sms_centre, \
            api_server(node_url, tmp_path / "node", extra=["--trunk", f"127.0.0.1:{sipp.port}", "--claim-lease", "3",
                                                      "--smsc", sms_centre.address]) as node:
        api = httpx.Client(base_url=node.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        defer(api.close)
        cid = create_running(api, numbers, max_attempts=2, ring_timeout_s=15.0,
                             pacing={"max_channels": 10, "max_cps": 3})
        wait_for("first calls", lambda: len(sipp.invites()) >= 3, 30)
        for i, kind in enumerate(OUTAGES):
            time.sleep(2.5)
            if kind.startswith("cut"):
                proxy.cut()
                time.sleep(float(kind[3:]))
                proxy.heal()
                print(f"outage {i + 1} ({kind} s) at {len(sipp.invites())} INVITEs")
                continue
            if kind == "lose":
                snapshot = tmp_path / "aof-copy"
                shutil.rmtree(snapshot, ignore_errors=True)
                shutil.copytree(aof, snapshot)
                time.sleep(1.0)
            sigkill(server)
            if kind == "lose":
                shutil.rmtree(aof)
                shutil.copytree(snapshot, aof)
            else:
                time.sleep(1.5)
            server.start()
            print(f"outage {i + 1} ({kind}) at {len(sipp.invites())} INVITEs")

        def completed() -> bool:
            try:
                r = api.get(f"/v1/campaigns/{cid}")
                return r.status_code == 200 and r.json()["state"] == "completed"
            except httpx.HTTPError:
                return False

        try:
            wait_for("campaign completed", completed, 180)
        except AssertionError:
            print("the node logged:\n", node.log_text()[-8000:])
            raise
        traced = sipp.traced()
        invited = sipp.invited()
        log = node.log_text()
        assert "Traceback" not in log, log[-8000:]
        lost = [line for line in log.splitlines() if "Redis had lost writes" in line]
        assert lost, log[-8000:]  # else the "lose" outages showed nothing
        print("\n".join(line.split(": ", 2)[-1] for line in lost))
        # The carrier is the judge.
        assert set(invited) == {"84" + n[1:] for n in numbers}, sorted(set(invited) ^ {"84" + n[1:] for n in numbers})
        beyond = {n: k for n, k in invited.items() if k > 2}
        assert not beyond, f"called beyond max_attempts: {beyond}"
        answered = {c.number for c in traced.values() if c.answered}
        again = {n: invited[n] for n in answered if invited[n] > 1}
        assert not again, f"answered and called again: {again}"
        left_up = [c for c in traced.values() if c.left_up]
        assert not left_up, left_up
        contacts = api.get(f"/v1/campaigns/{cid}/contacts", params={"limit": 100}).json()["contacts"]
        assert len(contacts) == len(numbers)
        assert all(c["state"] == "done" and 1 <= c["attempts"] <= 2 for c in contacts), \
            [c for c in contacts if c["state"] != "done" or not 1 <= c["attempts"] <= 2]
        pressed = {"84" + n[1:] for n in numbers if n.endswith("8")}
        wait_for("every SMS", lambda: len(sms_centre.messages()) >= len(pressed), 60)
        time.sleep(1.0)
        sent = [m["to"] for m in sms_centre.messages()]
        assert len(sent) == len(set(sent)), f"SMS doubled: {sorted(n for n in set(sent) if sent.count(n) > 1)}"
        assert set(sent) == pressed, (sorted(pressed - set(sent)), sorted(set(sent) - pressed))
        print(f"{len(traced)} calls, {len(OUTAGES)} outages; INVITEs per subscriber "
              f"max {max(invited.values())}, {len(answered)} answered, {len(sent)} SMS")

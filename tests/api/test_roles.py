"""`dialer serve --roles`: the API and the dialer as separate processes. Killing the API
process mid-campaign takes no call down: the dialing node finishes the campaign alone, every
subscriber called once (counted from the carrier's own trace), every SMS sent. And the reverse:
the API keeps answering while the dialing node is dead."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.auth import create_token
from store import keys
from tests.pacer.test_runtime_e2e import create_running, defer, wait_for  # noqa: F401 (fixture)
from tests.support.api_server import api_server
from tests.support.sipp import Sipp
from tests.support.smsc import smsc


def test_roles_are_checked_before_anything_starts(redis_url: str, tmp_path: Path) -> None:
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "--redis-url", redis_url, "--state-dir", str(tmp_path),
                               "serve", *args], capture_output=True, text=True, timeout=30)

    r = serve("--roles", "dial")
    assert r.returncode == 2 and "--roles dial needs --trunk" in r.stderr
    r = serve("--roles", "api,pacer")
    assert r.returncode == 2 and "give one or more of api, dial, record, sms" in r.stderr
    r = serve("--roles", "sms")
    assert r.returncode == 2 and "needs --smsc" in r.stderr


@pytest.mark.timeout(240)
def test_killing_the_api_process_takes_no_call_down(redis_url: str, tmp_path: Path, defer: Any) -> None:
    # ...8 answers and presses 1 (about 5 s a call), ...1 is busy, ...0 answers and stays silent.
    numbers = [f"0905{i:05d}{d}" for i in range(10) for d in "810"]
    sipp = Sipp("uas_carrier.xml", 1000, tmp_path, timeout_s=230, extra=["-trace_msg"]).start()
    defer(sipp.stop)
    token, _ = create_token(redis_url, "admin", "roles", None)
    cdr = tmp_path / "cdr.sqlite3"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    defer(r.close)
    with smsc(tmp_path) as sms_centre:
        dial = ["--roles", "dial,record,sms", "--trunk", f"127.0.0.1:{sipp.port}", "--smsc", sms_centre.address,
                "--cdr-db", str(cdr)]
        with api_server(redis_url, tmp_path / "dial", extra=dial, ready_log="dialling through") as dialer:
            with api_server(redis_url, tmp_path / "api", extra=["--roles", "api", "--cdr-db", str(cdr)]) as front:
                api = httpx.Client(base_url=front.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                cid = create_running(api, numbers, pacing={"max_channels": 40, "max_cps": 6})
                api.close()
                wait_for("calls in progress", lambda: len(sipp.invited()) >= 6, 60)
                assert front.stop(signal.SIGKILL) == -signal.SIGKILL
            invited_at_kill = len(sipp.invited())
            # The dialing node goes on alone and completes the campaign.
            wait_for("campaign completed", lambda: r.hget(keys.campaign(cid), "state") == "completed", 150)
            assert len(sipp.invited()) > invited_at_kill
            assert "Traceback" not in dialer.log_text(), dialer.log_text()
            # The far end's count: every subscriber called exactly once (max_attempts 1).
            invited = sipp.invited()
            assert sorted(invited) == sorted("84" + n[1:] for n in numbers) and set(invited.values()) == {1}, invited
            pressed = {"84" + n[1:] for n in numbers if n.endswith("8")}
            msgs = wait_for("SMS", lambda: (lambda m: m if len(m) >= len(pressed) else None)(sms_centre.messages()), 30)
            assert sorted(m["to"] for m in msgs) == sorted(pressed)
            # The reverse: an API process with the dialing node killed still answers.
            with api_server(redis_url, tmp_path / "api2", extra=["--roles", "api", "--cdr-db", str(cdr)]) as front:
                assert dialer.stop(signal.SIGKILL) == -signal.SIGKILL
                api = httpx.Client(base_url=front.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                defer(api.close)
                assert api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed"
                contacts = api.get(f"/v1/campaigns/{cid}/contacts", params={"limit": 100}).json()["contacts"]
                assert len(contacts) == len(numbers)
                for c in contacts:
                    want = {"8": "answered", "1": "busy", "0": "answered"}[c["number"][-1]]
                    assert (c["state"], c["last_outcome"], c["attempts"]) == ("done", want, 1), c
                # The archive the recorder role wrote is the one the API reads.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    calls = api.get(f"/v1/campaigns/{cid}/contacts/{numbers[0]}/calls").json()
                    if calls:
                        break
                    time.sleep(0.2)
                assert [x["outcome"] for x in calls if x["kind"] == "call"] == ["answered"]

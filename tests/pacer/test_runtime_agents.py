"""Agent campaigns through `dialer serve --trunk`: the carrier's subscribers answer, the runtime
reserves a ready agent for each answered call and the gateway bridges it to the agent's phone
(sipp, talking with RTP); agents wrap up until their disposition, which completes the contact."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacer.cdr import Archive
from tests.pacer.test_runtime_e2e import create_running, defer, wait_for  # noqa: F401 (fixture)
from tests.support.rig import agent_rig


def disposition_bot(base: str, token: str, agents: list[str], stop: threading.Event, wrap_s: float, done: list[str],
                    callback_first: bool = False) -> None:
    """Each agent sets its open call's disposition `wrap_s` after the call appears (with
    `callback_first`, the first one asks for a callback 2 s later)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
        seen: dict[str, float] = {}
        while not stop.is_set():
            try:
                step(api, agents, seen, wrap_s, done, callback_first)
            except httpx.TransportError:
                pass  # the server is going away at the end of the test
            time.sleep(0.1)


def step(api: httpx.Client, agents: list[str], seen: dict[str, float], wrap_s: float, done: list[str],
         callback_first: bool) -> None:
    from datetime import UTC, datetime, timedelta

    for a in agents:
        call = api.get(f"/v1/agents/{a}").json().get("call")
        if call and call not in seen:
            seen[call] = time.monotonic()
        elif call and time.monotonic() - seen[call] >= wrap_s:
            body: dict[str, Any] = {"outcome": "agreed", "answers": {"q1": "yes"}}
            if callback_first and not done:
                body = {"outcome": "call_later", "callback_at": (datetime.now(UTC) + timedelta(seconds=2)).isoformat()}
            r = api.post(f"/v1/calls/{call}/disposition", json=body)
            if r.status_code == 200:
                done.append(call)


@pytest.mark.timeout(150)
def test_progressive_every_answered_call_reaches_an_agent(redis_url: str, tmp_path: Path, defer: Any) -> None:
    numbers = [f"0905{i:05d}7" for i in range(8)]  # answer and stay on the line
    agents = ["ann", "bob"]
    with agent_rig(redis_url, tmp_path, defer, agents + ["cy"], talk_ms=1500) as rig:
        api, server, token = rig.api, rig.server, rig.token
        spec = {"mode": "progressive", "ivr_script": None, "sms": None, "pacing": {"max_channels": 10, "max_cps": 5}}
        r = api.post("/v1/campaigns", json={
            "name": "agents", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh", "windows": ["00:00-24:00"],
            "country": "VN", "max_attempts": 1, **spec})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        csv = ("phone\n" + "".join(f"{n}\n" for n in numbers)).encode()
        assert api.post(f"/v1/campaigns/{cid}/contacts", content=csv).json()["accepted"] == len(numbers)
        for a in agents:
            assert api.post(f"/v1/campaigns/{cid}/agents/{a}/join").status_code == 200
        # A third agent joins but is on a break: no call is put through to her.
        assert api.post(f"/v1/campaigns/{cid}/agents/cy/join").status_code == 200
        assert api.post("/v1/agents/cy/away").json()["away"] is True
        stop, done = threading.Event(), []
        bot = threading.Thread(target=disposition_bot, args=(server.base_url, token, agents, stop, 2.0, done), daemon=True)
        bot.start()
        defer(stop.set)
        for action in ("approve", "start"):
            assert api.post(f"/v1/campaigns/{cid}/{action}").status_code == 200
        wait_for("every customer disposed", lambda: len(done) >= len(numbers), 90)
        contacts = api.get(f"/v1/campaigns/{cid}/contacts", params={"limit": 100}).json()["contacts"]
        assert sorted((c["state"], c["last_outcome"]) for c in contacts) == [("done", "agreed")] * len(numbers)
        live = api.get(f"/v1/campaigns/{cid}/stats").json()["live"]
        assert live is not None and live["abandoned"] == 0, live
        # Every customer's call was connected to one of the agents within the connect limit.
        archive = Archive(tmp_path / "state" / "cdr.sqlite3")
        for n in numbers:
            legs = wait_for(f"CDR of {n}", lambda: [x for x in archive.calls(cid, "+84" + n[1:]) if x["outcome"] == "connected"], 10)
            assert len(legs) == 1 and legs[0]["agent"] in agents, legs
            ms = float(legs[0]["detail"].split(" ms after")[0].rsplit(" ", 1)[-1])
            assert ms < 2000, legs[0]["detail"]
        wait_for("campaign completed", lambda: api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed", 20)


@pytest.mark.timeout(120)
def test_a_callback_returns_to_the_agent_who_set_it(redis_url: str, tmp_path: Path, defer: Any) -> None:
    agents = ["ann", "bob"]
    with agent_rig(redis_url, tmp_path, defer, agents, talk_ms=1000, timeout_s=110) as rig:
        api, server, token = rig.api, rig.server, rig.token
        r = api.post("/v1/campaigns", json={
            "name": "callbacks", "mode": "progressive", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh",
            "windows": ["00:00-24:00"], "country": "VN", "max_attempts": 3, "pacing": {"max_channels": 10, "max_cps": 5}})
        cid = r.json()["id"]
        assert api.post(f"/v1/campaigns/{cid}/contacts", content=b"phone\n0906000007\n").json()["accepted"] == 1
        for a in agents:
            assert api.post(f"/v1/campaigns/{cid}/agents/{a}/join").status_code == 200
        stop, done = threading.Event(), []
        bot = threading.Thread(target=disposition_bot, args=(server.base_url, token, agents, stop, 1.5, done, True), daemon=True)
        bot.start()
        defer(stop.set)
        for action in ("approve", "start"):
            assert api.post(f"/v1/campaigns/{cid}/{action}").status_code == 200
        wait_for("the callback disposed", lambda: len(done) >= 2, 60)
        archive = Archive(tmp_path / "state" / "cdr.sqlite3")
        legs = wait_for("two connected calls", lambda: (lambda x: x if len(x) == 2 else None)(
            [x for x in archive.calls(cid, "+84906000007") if x["outcome"] == "connected"]), 10)
        assert legs[0]["agent"] == legs[1]["agent"], legs  # bob was free (and idle longer) the second time too
        c = api.get(f"/v1/campaigns/{cid}/contacts").json()["contacts"][0]
        assert (c["state"], c["last_outcome"], c["attempts"]) == ("done", "agreed", 2)


@pytest.mark.timeout(150)
def test_predictive_keeps_the_abandon_rate_under_its_target(redis_url: str, tmp_path: Path, defer: Any) -> None:
    # A third answer (...7); the others are busy (...1) or unavailable (...6).
    numbers = [f"0907{i:05d}{d}" for i in range(12) for d in "716"]
    agents = ["ann", "bob", "cy"]
    with agent_rig(redis_url, tmp_path, defer, agents, talk_ms=1000, calls=1000) as rig:
        api, server, token = rig.api, rig.server, rig.token
        r = api.post("/v1/campaigns", json={
            "name": "predictive", "mode": "predictive", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh",
            "windows": ["00:00-24:00"], "country": "VN", "max_attempts": 1,
            "pacing": {"max_channels": 20, "max_cps": 10, "target_abandon_rate": 0.05}})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        csv = ("phone\n" + "".join(f"{n}\n" for n in numbers)).encode()
        assert api.post(f"/v1/campaigns/{cid}/contacts", content=csv).json()["accepted"] == len(numbers)
        for a in agents:
            assert api.post(f"/v1/campaigns/{cid}/agents/{a}/join").status_code == 200
        stop, done = threading.Event(), []
        bot = threading.Thread(target=disposition_bot, args=(server.base_url, token, agents, stop, 1.2, done), daemon=True)
        bot.start()
        defer(stop.set)
        for action in ("approve", "start"):
            assert api.post(f"/v1/campaigns/{cid}/{action}").status_code == 200
        wait_for("campaign completed", lambda: api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed", 120)
        live = api.get(f"/v1/campaigns/{cid}/stats").json()["live"]
        archive = Archive(tmp_path / "state" / "cdr.sqlite3")
        calls = [x for n in numbers for x in archive.calls(cid, "+84" + n[1:]) if x["kind"] == "call"]
        connected = sum(x["outcome"] == "connected" for x in calls)
        abandoned = sum(x["outcome"] == "abandoned" for x in calls)
        assert connected + abandoned == 12 and len(done) == connected, (connected, abandoned, len(done))
        assert abandoned <= 0.05 * 12, (abandoned, live)
        assert live is None or live["window_abandon_rate"] <= 0.05


@pytest.mark.timeout(240)
def test_a_node_killed_while_customers_talk_to_agents(redis_url: str, tmp_path: Path, defer: Any) -> None:
    """A predictive campaign; `dialer serve` SIGKILLed while its customers are connected to
    agents, then started again. The carrier's and the agents' phones' own traces judge: both legs
    of every connected call get their BYE (every ringing call its CANCEL) within 10 s of the
    restart; the agents' calls are still open on their screens, and their dispositions complete
    the contacts (nothing lost); nobody is called again."""
    import signal

    from api.auth import create_token
    from tests.support.api_server import api_server
    from tests.support.sipp import Sipp

    agents = ["ann", "bob", "cy"]
    # Three customers answer and stay on the line (...0); three ring until CANCELled (...2).
    numbers = [f"0908{i:05d}0" for i in range(3)] + [f"0908{i:05d}2" for i in range(3)]
    carrier = Sipp("uas_carrier.xml", 100, tmp_path, timeout_s=230, extra=["-trace_msg"]).start()
    defer(carrier.stop)
    # The agents' phones talk for a minute: only the dialer hangs them up in this test.
    phones = Sipp("uas_agent.xml", 100, tmp_path, timeout_s=230, keys={"talk_ms": "60000"}, extra=["-trace_msg"]).start()
    defer(phones.stop)
    token, _ = create_token(redis_url, "admin", "e2e", None)
    state = tmp_path / "state"
    extra = ["--trunk", f"127.0.0.1:{carrier.port}", "--claim-lease", "3"]
    with api_server(redis_url, state, extra=extra) as first:
        api = httpx.Client(base_url=first.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for a in agents:
            r = api.post("/v1/agents", json={"id": a, "name": a.title(), "sip_uri": f"sip:{a}@127.0.0.1:{phones.port}"})
            assert r.status_code == 201, r.text
        r = api.post("/v1/campaigns", json={
            "name": "predictive kill", "mode": "predictive", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh",
            "windows": ["00:00-24:00"], "country": "VN", "max_attempts": 1, "ring_timeout_s": 15,
            "pacing": {"max_channels": 10, "max_cps": 5}})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        csv = ("phone\n" + "".join(f"{n}\n" for n in numbers)).encode()
        assert api.post(f"/v1/campaigns/{cid}/contacts", content=csv).json()["accepted"] == len(numbers)
        for a in agents:
            assert api.post(f"/v1/campaigns/{cid}/agents/{a}/join").status_code == 200
        for action in ("approve", "start"):
            assert api.post(f"/v1/campaigns/{cid}/{action}").status_code == 200

        def all_talking() -> bool:
            # Every agent's phone answered and ACKed 0.5 s ago, every customer's answer ACKed.
            legs = [c for c in phones.traced().values() if c.left_up]
            customers = list(carrier.traced().values())
            if len(legs) < len(agents) or any(c.answered and c.acked_at is None for c in [*legs, *customers]):
                return False
            last = max(max(c.invited_at, c.acked_at or 0) for c in [*legs, *customers])
            return time.time() - last > 0.5

        wait_for("every agent talking to a customer", all_talking, 60)
        open_calls = {a: api.get(f"/v1/agents/{a}").json()["call"] for a in agents}
        assert all(open_calls.values()), open_calls
        api.close()
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    restarted_at = time.time()
    time.sleep(0.5)
    cut_legs = {k for k, c in phones.traced().items() if c.left_up}
    cut_customers = {k for k, c in carrier.traced().items() if c.left_up}
    assert len(cut_legs) == len(agents), cut_legs
    with api_server(redis_url, state, extra=extra) as second:
        api = httpx.Client(base_url=second.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        defer(api.close)
        wait_for("both legs of every cut call ended", lambda: not any(
            c.left_up for c in [*phones.traced().values(), *carrier.traced().values()]), 20)
        legs, customers = phones.traced(), carrier.traced()
        ended = [legs[k].bye_at for k in cut_legs] + [
            customers[k].bye_at if customers[k].answered else customers[k].cancel_at for k in cut_customers]
        print(f"{len(cut_legs)} agents' legs and {len(cut_customers)} customer calls cut by the kill; ended "
              f"{max(t or 0 for t in ended) - restarted_at:.1f} s after the restart at the latest")
        assert all(t is not None and t - restarted_at < 10 for t in ended), (ended, restarted_at)
        # Each agent's call is still on its screen, for its disposition, which completes the contact.
        assert {a: api.get(f"/v1/agents/{a}").json()["call"] for a in agents} == open_calls
        for call in open_calls.values():
            r = api.post(f"/v1/calls/{call}/disposition", json={"outcome": "agreed", "answers": {"q1": "yes"}})
            assert r.status_code == 200 and r.json()["result"] == "final", r.text
        wait_for("campaign completed", lambda: api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed", 60)
        contacts = {c["number"]: c for c in api.get(f"/v1/campaigns/{cid}/contacts", params={"limit": 100}).json()["contacts"]}
        assert len(contacts) == len(numbers)
        agreed = [n for n, c in contacts.items() if c["last_outcome"] == "agreed"]
        assert len(agreed) == len(agents) and all(n.endswith("0") for n in agreed), contacts
        assert all(c["state"] == "done" and c["attempts"] == 1 for c in contacts.values()), contacts
        # The carrier is the judge: nobody was called twice (max_attempts 1).
        invited = carrier.invited()
        assert max(invited.values()) == 1 and set(invited) <= {"84" + n[1:] for n in numbers}, invited
        # The CDR says what became of each connected call.
        archive = Archive(state / "cdr.sqlite3")
        for n in agreed:
            rows = archive.calls(cid, n)
            assert any(x["outcome"] == "connected" and "interrupted" in (x["detail"] or "") and "BYE sent" in x["detail"]
                       for x in rows), rows

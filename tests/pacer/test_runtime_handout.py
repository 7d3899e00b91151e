"""Preview and manual campaigns through `dialer serve --trunk`: an agent asks for the next
customer; the runtime places the call when the agent says (or, in preview, once the preview time
has passed) and puts the answered customer through to the agent's phone (sipp, with RTP); a call
nobody answers ends with the carrier's outcome and frees the agent; a do-not-call-back customer
comes back after the campaign's period and not before."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacer.cdr import Archive
from tests.pacer.test_runtime_e2e import defer, wait_for  # noqa: F401 (fixture)
from tests.support.api_server import api_server
from tests.support.rig import agent_rig


def campaign(api: httpx.Client, numbers: list[str], **spec: Any) -> str:
    r = api.post("/v1/campaigns", json={
        "name": "hands out", "caller_id": "+84281234567", "timezone": "Asia/Ho_Chi_Minh", "windows": ["00:00-24:00"],
        "country": "VN", "pacing": {"max_channels": 10, "max_cps": 5}, **spec})
    assert r.status_code == 201, r.text
    cid = str(r.json()["id"])
    csv = ("phone\n" + "".join(f"{n}\n" for n in numbers)).encode()
    assert api.post(f"/v1/campaigns/{cid}/contacts", content=csv).json()["accepted"] == len(numbers)
    assert api.post(f"/v1/campaigns/{cid}/agents/ann/join").status_code == 200
    for action in ("approve", "start"):
        assert api.post(f"/v1/campaigns/{cid}/{action}").status_code == 200
    return cid


def placed(archive: Archive, cid: str, number: str) -> list[dict[str, Any]]:
    """The runtime's records of calls to `number` (a disposition's record has no SIP code)."""
    return [x for x in archive.calls(cid, number) if x["kind"] == "call" and x["sip_code"] is not None]


def settle(api: httpx.Client, call_id: str, timeout: float = 40) -> str:
    """Wait until the handed call is connected ("connected") or ended by its outcome ("ended")."""
    def state() -> str | None:
        r = api.get(f"/v1/calls/{call_id}")
        if r.status_code == 404:
            return "ended"
        return "connected" if r.json()["dial"] == "connected" else None

    return str(wait_for(f"call {call_id} placed", state, timeout))


@pytest.mark.timeout(150)
def test_preview_dials_after_the_preview_time_or_when_the_agent_accepts(redis_url: str, tmp_path: Path, defer: Any) -> None:
    answer, busy = "0908000017", "0908000021"  # answers and stays; busy (486)
    with agent_rig(redis_url, tmp_path, defer, ["ann"], talk_ms=4000) as rig:
        api = rig.api
        cid = campaign(api, [answer, busy], mode="preview", preview_s=2.5, max_attempts=2, retry_delay_s=1.0)
        archive = Archive(tmp_path / "state" / "cdr.sqlite3")

        # A skipped preview is never dialled.
        first = api.post("/v1/agents/ann/next", json={}).json()["customer"]
        assert first["dial_at"] is not None
        assert api.post(f"/v1/calls/{first['call_id']}/skip").json()["result"] == "released"

        handed: list[tuple[dict[str, Any], float, str]] = []  # (customer, handed at, how)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            r = api.post("/v1/agents/ann/next", json={})
            if r.status_code == 409 and api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed":
                break  # every contact done: the runtime completed the campaign
            assert r.status_code == 200, r.text
            customer = r.json()["customer"]
            if customer is None:
                time.sleep(0.3)  # the busy one waits for its retry delay
                continue
            at = time.time()
            call_id = customer["call_id"]
            # Every other customer: the agent accepts at once; the others wait for the timer.
            how = "accepted" if len(handed) % 2 else "timer"
            handed.append((customer, at, how))
            view = api.get(f"/v1/calls/{call_id}").json()
            assert view["dial"] == "waiting" and view["connected"] is False
            if how == "accepted":
                assert api.post(f"/v1/calls/{call_id}/dial").status_code == 200
            else:
                time.sleep(1.0)
                assert api.get(f"/v1/calls/{call_id}").json()["dial"] == "waiting"  # still reading
            # Another customer only once this one is finished.
            assert api.post("/v1/agents/ann/next", json={}).status_code == 409
            if settle(api, call_id) == "connected":
                assert customer["number"] == "+84" + answer[1:]
                assert api.post(f"/v1/calls/{call_id}/skip").status_code == 409  # already called
                r = api.post(f"/v1/calls/{call_id}/disposition", json={"outcome": "agreed", "answers": {"q1": "yes"}})
                assert r.status_code == 200 and r.json()["result"] == "final", r.text
            else:
                assert customer["number"] == "+84" + busy[1:]
                assert api.get("/v1/agents/ann").json()["call"] is None  # the outcome freed the agent
        else:
            raise AssertionError(f"not finished: {handed}")

        # The skipped customer came back; the busy one was tried twice, the answered one once.
        assert first["number"] in {c["number"] for c, _, _ in handed}
        assert sorted(c["number"] for c, _, _ in handed) == sorted(["+84" + answer[1:]] + ["+84" + busy[1:]] * 2)
        contacts = {c["number"]: c for c in api.get(f"/v1/campaigns/{cid}/contacts").json()["contacts"]}
        assert (contacts["+84" + answer[1:]]["last_outcome"], contacts["+84" + answer[1:]]["attempts"]) == ("agreed", 1)
        assert (contacts["+84" + busy[1:]]["last_outcome"], contacts["+84" + busy[1:]]["attempts"]) == ("busy", 2)
        # Each call left when it should: after the preview time, or at once when accepted.
        for customer, at, how in handed:
            rows = wait_for("its record", lambda: [x for x in placed(archive, cid, customer["number"])
                                                   if x["call_id"] == customer["call_id"]], 10)
            dialled = rows[0]["dialled_at"]
            if how == "timer":
                assert dialled >= at + 2.4, (how, dialled - at)
            else:
                assert dialled - at < 2.0, (how, dialled - at)
            if rows[0]["outcome"] == "connected":
                assert rows[0]["agent"] == "ann"
        assert len(placed(archive, cid, "+84" + answer[1:])) == 1


@pytest.mark.timeout(150)
def test_manual_dials_on_the_agents_word_and_do_not_call_back_waits_its_period(
        redis_url: str, tmp_path: Path, defer: Any) -> None:
    number = "+84908000037"
    with agent_rig(redis_url, tmp_path, defer, ["ann"], talk_ms=3000) as rig:
        api = rig.api
        period_s = 5.0
        cid = campaign(api, ["0" + number[3:]], mode="manual", max_attempts=3, do_not_call_back_days=period_s / 86_400)
        archive = Archive(tmp_path / "state" / "cdr.sqlite3")

        customer = api.post("/v1/agents/ann/next", json={}).json()["customer"]
        assert customer["number"] == number and customer["dial_at"] is None
        call_id = customer["call_id"]
        time.sleep(3.0)  # manual: nothing is dialled until the agent says
        assert api.get(f"/v1/calls/{call_id}").json()["dial"] == "waiting"
        assert placed(archive, cid, number) == []
        assert api.post(f"/v1/calls/{call_id}/skip").status_code == 409  # skipping is preview's
        assert api.post(f"/v1/calls/{call_id}/dial").status_code == 200
        assert settle(api, call_id) == "connected"
        assert api.post(f"/v1/calls/{call_id}/dial").status_code == 409  # once
        r = api.post(f"/v1/calls/{call_id}/disposition", json={"outcome": "declined", "do_not_call_back": True})
        assert r.status_code == 200 and r.json()["result"] == "do_not_call_back", r.text
        set_at = time.time()
        row = api.get(f"/v1/campaigns/{cid}/contacts").json()["contacts"][0]
        assert row["state"] == "do_not_call_back" and abs(row["time"] - (set_at + period_s)) < 1.5, row

        # Not before the period's end; then it is the agent's next customer again.
        def again() -> dict[str, Any] | None:
            got: dict[str, Any] | None = api.post("/v1/agents/ann/next", json={}).json()["customer"]
            return got

        back = wait_for("the customer again", again, 20)
        assert time.time() >= row["time"] - 0.3, (time.time(), row["time"])
        assert back["number"] == number and back["attempts"] == 1
        r = api.post(f"/v1/calls/{back['call_id']}/disposition", json={"outcome": "agreed"})  # without calling
        assert r.status_code == 200 and r.json()["result"] == "final", r.text
        assert len(placed(archive, cid, number)) == 1
        wait_for("campaign completed", lambda: api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed", 20)


@pytest.mark.timeout(120)
def test_a_call_whose_dialer_died_is_freed_for_its_agent(redis_url: str, tmp_path: Path, defer: Any) -> None:
    """The node placing a manual call is killed while the customer's phone rings: once its lease
    on the partition is gone, the agent's disposition is taken (it was refused while the node
    lived), and the agent can go on."""
    with agent_rig(redis_url, tmp_path, defer, ["ann"], talk_ms=2000) as rig:
        api = rig.api
        cid = campaign(api, ["0908000052", "0908000062"], mode="manual", max_attempts=3)  # ...2 rings until CANCEL
        customer = api.post("/v1/agents/ann/next", json={}).json()["customer"]
        call_id = customer["call_id"]
        assert api.post(f"/v1/calls/{call_id}/dial").status_code == 200
        wait_for("ringing", lambda: api.get(f"/v1/calls/{call_id}").json()["dial"] == "dialling", 10)
        assert api.post(f"/v1/calls/{call_id}/disposition", json={"outcome": "no_answer"}).status_code == 409
        assert api.post(f"/v1/calls/{call_id}/dial").status_code == 409  # a live node is placing it
        assert rig.server.stop(signal.SIGKILL) == -signal.SIGKILL
    with api_server(redis_url, tmp_path / "state2", extra=["--trunk", f"127.0.0.1:{rig.carrier.port}"]) as second:
        api = httpx.Client(base_url=second.base_url, headers={"Authorization": f"Bearer {rig.token}"}, timeout=30)
        defer(api.close)
        assert api.post(f"/v1/calls/{call_id}/disposition", json={"outcome": "no_answer"}).status_code == 409  # lease still held
        # The dead node's partition lease runs out (15 s); the call is no one's any more.
        r = wait_for("the disposition taken", lambda: (lambda r: r if r.status_code == 200 else None)(
            api.post(f"/v1/calls/{call_id}/disposition", json={"outcome": "no_answer"})), 30)
        assert r.json()["result"] == "retry"
        nxt = api.post("/v1/agents/ann/next", json={})
        assert nxt.status_code == 200 and nxt.json()["customer"]["number"] != customer["number"], nxt.text
        assert api.get(f"/v1/campaigns/{cid}").json()["state"] == "running"

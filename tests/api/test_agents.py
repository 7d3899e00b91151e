"""Agents over real HTTP: roster, join/leave, the next customer in manual mode only when the
previous one is finished, dispositions (final, callback to the same agent, do not call back)."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import dialer_core
import httpx

from tests.api.conftest import Client, read_events
from tests.api.test_campaigns import create
from tests.api.test_contacts import upload

MANUAL = {
    "name": "Contact centre", "mode": "manual", "caller_id": "0281234567", "country": "VN",
    "survey": [{"id": "satisfied", "text": "Are you satisfied?", "choices": ["yes", "no"]}],
    "do_not_call_back_days": 7,
}


def running_manual(admin: httpx.Client, numbers: int = 3, cid: str = "cc", **extra: Any) -> None:
    create(admin, {**MANUAL, **extra}, id=cid)
    body = ("phone,name\n" + "".join(f"090200000{i},Customer {i}\n" for i in range(numbers))).encode()
    assert upload(admin, cid, body).json()["accepted"] == numbers
    assert admin.post(f"/v1/campaigns/{cid}/approve").status_code == 200
    assert admin.post(f"/v1/campaigns/{cid}/start").status_code == 200


def agent(admin: httpx.Client, aid: str) -> None:
    r = admin.post("/v1/agents", json={"id": aid, "name": aid.title(), "sip_uri": f"sip:{aid}@127.0.0.1:5070"})
    assert r.status_code == 201, r.text


def test_roster_join_leave(admin: httpx.Client, client: Client) -> None:
    running_manual(admin, agents=["alice", "bob"])
    agent(admin, "alice")
    agent(admin, "bob")
    agent(admin, "carol")
    assert admin.post("/v1/agents", json={"id": "alice", "name": "A", "sip_uri": "sip:a@h"}).status_code == 409
    r = admin.post("/v1/agents", json={"id": "dave", "name": "D", "sip_uri": "http://nope"})
    assert r.status_code == 422 and "sip_uri" in r.text
    alice, bob = client("agent", agent="alice"), client("agent", agent="bob")
    assert alice.post("/v1/campaigns/cc/agents/alice/join").json()["campaigns"] == ["cc"]
    assert alice.post("/v1/campaigns/cc/agents/bob/join").status_code == 403  # not for someone else
    assert admin.post("/v1/campaigns/cc/agents/carol/join").status_code == 403  # not on the roster
    assert admin.post("/v1/campaigns/cc/agents/nobody/join").status_code == 404
    assert bob.get("/v1/agents/alice").status_code == 403
    assert alice.get("/v1/agents").status_code == 403
    assert [a["id"] for a in admin.get("/v1/agents").json()["agents"]] == ["alice", "bob", "carol"]
    assert admin.get("/v1/campaigns/cc/stats").json()["agents_joined"] == 1
    assert alice.post("/v1/campaigns/cc/agents/alice/leave").json()["campaigns"] == []
    kinds = [(e, d.get("agent")) for _, e, d in read_events(admin, "cc", 6) if e == "agent"]
    assert kinds == [("agent", "alice"), ("agent", "alice")]


def test_manual_next_and_dispositions(admin: httpx.Client, client: Client, redis_url: str) -> None:
    running_manual(admin, numbers=3)
    agent(admin, "alice")
    agent(admin, "bob")
    alice, bob = client("agent", agent="alice"), client("agent", agent="bob")
    r = alice.post("/v1/agents/alice/next", json={})
    assert r.status_code == 409 and "joined no running" in r.json()["detail"]
    alice.post("/v1/campaigns/cc/agents/alice/join")
    bob.post("/v1/campaigns/cc/agents/bob/join")
    first = alice.post("/v1/agents/alice/next", json={}).json()["customer"]
    assert first["campaign"] == "cc" and first["attrs"]["name"].startswith("Customer") and first["source"] == "fresh"
    # Not another one before this one is finished.
    r = alice.post("/v1/agents/alice/next", json={})
    assert r.status_code == 409 and first["call_id"] in r.json()["detail"]
    assert admin.get("/v1/agents/alice").json()["call"] == first["call_id"]
    # Bob cannot finish Alice's call.
    assert bob.post(f"/v1/calls/{first['call_id']}/disposition", json={"outcome": "agreed"}).status_code == 403
    r = alice.post(f"/v1/calls/{first['call_id']}/disposition", json={"outcome": "agreed", "answers": {"satisfied": "yes"}})
    assert r.status_code == 200 and r.json()["result"] == "final"
    assert alice.post(f"/v1/calls/{first['call_id']}/disposition", json={"outcome": "agreed"}).status_code == 404

    second = alice.post("/v1/agents/alice/next", json={}).json()["customer"]
    soon = datetime.now(UTC) + timedelta(seconds=2)
    r = alice.post(f"/v1/calls/{second['call_id']}/disposition", json={"outcome": "call_later", "callback_at": soon.isoformat()})
    assert r.json()["result"] == "callback"

    third = bob.post("/v1/agents/bob/next", json={}).json()["customer"]
    r = bob.post(f"/v1/calls/{third['call_id']}/disposition", json={"outcome": "declined", "do_not_call_back": True})
    assert r.json()["result"] == "do_not_call_back"

    assert bob.post("/v1/agents/bob/next", json={}).json() == {"customer": None}  # nobody due now
    q = dialer_core.CallQueue(redis_url, "cc")
    c2 = q.contact(second["number"]) or {}
    assert c2["state"] == "callback" and c2["agent"] == "alice" and abs(c2["time"] - soon.timestamp()) < 0.01
    c3 = q.contact(third["number"]) or {}
    assert c3["state"] == "do_not_call_back" and c3["time"] > time.time() + 6.9 * 86400
    page = admin.get("/v1/campaigns/cc/contacts", params={"state": "done"}).json()["contacts"]
    assert [(x["number"], x["answers"]) for x in page] == [(first["number"], {"satisfied": "yes"})]

    # The callback comes due and goes back to the same agent.
    time.sleep(max(0.0, soon.timestamp() - time.time()) + 0.05)
    assert bob.post("/v1/agents/bob/next", json={}).json() == {"customer": None}  # Alice's callback waits for her
    back = alice.post("/v1/agents/alice/next", json={}).json()["customer"]
    assert back["number"] == second["number"] and back["source"] == "callback" and back["attempts"] == 1


def test_disposition_validation(admin: httpx.Client, client: Client) -> None:
    running_manual(admin, numbers=1)
    agent(admin, "alice")
    alice = client("agent", agent="alice")
    alice.post("/v1/campaigns/cc/agents/alice/join")
    call = alice.post("/v1/agents/alice/next", json={}).json()["customer"]["call_id"]
    url = f"/v1/calls/{call}/disposition"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body, field in [
        ({"outcome": "Agreed!"}, "outcome"),
        ({"outcome": "x", "callback_at": past}, "callback_at"),
        ({"outcome": "x", "callback_at": "2030-01-01T10:00:00"}, "callback_at"),
        ({"outcome": "x", "callback_at": "2030-01-01T10:00:00Z", "do_not_call_back": True}, "exclude"),
        ({"outcome": "x", "answers": {"Bad Key": "1"}}, "answers"),
    ]:
        r = alice.post(url, json=body)
        assert r.status_code == 422 and field in r.text, (body, r.text)
    assert admin.get("/v1/agents/alice").json()["call"] == call  # nothing changed
    assert alice.post(url, json={"outcome": "agreed"}).status_code == 200


def test_dispositions_reach_the_cdr_archive_and_results(admin: httpx.Client, client: Client) -> None:
    running_manual(admin, numbers=2, cid="cdr-test")  # the archive outlives the per-test flush: an id of its own
    agent(admin, "alice")
    alice = client("agent", agent="alice")
    alice.post("/v1/campaigns/cdr-test/agents/alice/join")
    first = alice.post("/v1/agents/alice/next", json={}).json()["customer"]
    alice.post(f"/v1/calls/{first['call_id']}/disposition", json={"outcome": "agreed", "answers": {"satisfied": "yes"}})
    national = "0" + first["number"][3:]  # +8490... -> 090...
    deadline = time.monotonic() + 10
    calls: list[dict[str, Any]] = []
    while not calls and time.monotonic() < deadline:  # the recorder commits in batches, every 0.5 s at most
        calls = admin.get(f"/v1/campaigns/cdr-test/contacts/{national}/calls").json()
        time.sleep(0.05)
    assert len(calls) == 1
    c = calls[0]
    assert (c["kind"], c["outcome"], c["agent"], c["answers"], c["attempt"], c["call_id"]) == (
        "call", "agreed", "alice", {"satisfied": "yes"}, 1, first["call_id"])
    assert c["dialled_at"] <= c["ended_at"] <= c["recorded_at"]
    assert admin.get("/v1/campaigns/cdr-test/contacts/not-a-number/calls").status_code == 422
    rows = {r["number"]: r for r in csv.DictReader(io.StringIO(admin.get("/v1/campaigns/cdr-test/results.csv").text))}
    assert rows[first["number"]]["calls"] == "1" and rows[first["number"]]["last_outcome"] == "agreed"
    assert sum(r["calls"] == "0" for r in rows.values()) == 1


def test_an_agent_takes_a_break_and_comes_back(admin: httpx.Client, client: Client) -> None:
    agent(admin, "alice")
    alice, bob = client("agent", agent="alice"), client("agent", agent="bob")
    assert admin.get("/v1/agents/alice").json()["away"] is False
    r = alice.post("/v1/agents/alice/away")
    assert r.status_code == 200 and r.json()["away"] is True
    assert bob.post("/v1/agents/alice/ready").status_code == 403  # only herself (or ops)
    assert alice.post("/v1/agents/alice/ready").json()["away"] is False
    assert admin.post("/v1/agents/nobody/away").status_code == 404


def test_the_agent_screens_api(admin: httpx.Client, client: Client) -> None:
    running_manual(admin, numbers=2, cid="sc")
    create(admin, {**MANUAL, "mode": "preview"}, id="pv")
    body = b"phone,name\n0903000001,Previewed\n"
    assert upload(admin, "pv", body).json()["accepted"] == 1
    for action in ("approve", "start"):
        assert admin.post(f"/v1/campaigns/pv/{action}").status_code == 200
    agent(admin, "alice")
    alice = client("agent", agent="alice", name="Alice's token")
    assert alice.get("/v1/me").json() == {"role": "agent", "name": "Alice's token", "agent": "alice"}
    assert admin.get("/v1/me").json()["agent"] is None
    alice.post("/v1/campaigns/sc/agents/alice/join")
    mine = {c["id"]: c for c in alice.get("/v1/agents/alice/campaigns").json()["campaigns"]}
    assert mine["sc"]["joined"] is True and mine["pv"]["joined"] is False
    assert mine["sc"]["survey"][0]["id"] == "satisfied"
    call = alice.post("/v1/agents/alice/next", json={"campaign": "sc"}).json()["customer"]
    view = alice.get(f"/v1/calls/{call['call_id']}").json()
    assert view["number"] == call["number"] and view["attrs"]["name"].startswith("Customer") and view["connected"] is False
    assert view["survey"][0]["choices"] == ["yes", "no"]
    r = alice.post(f"/v1/calls/{call['call_id']}/skip")
    assert r.status_code == 409 and "only a preview" in r.json()["detail"]
    alice.post(f"/v1/calls/{call['call_id']}/disposition", json={"outcome": "agreed"})
    # Preview: skip gives the customer back, no attempt counted.
    alice.post("/v1/campaigns/pv/agents/alice/join")
    pv = alice.post("/v1/agents/alice/next", json={"campaign": "pv"}).json()["customer"]
    assert alice.post(f"/v1/calls/{pv['call_id']}/skip").json()["result"] == "released"
    again = alice.post("/v1/agents/alice/next", json={"campaign": "pv"}).json()["customer"]
    assert again["number"] == pv["number"] and again["attempts"] == 0
    # The live stream: the agent's record now, then on every change.
    with alice.stream("GET", "/v1/agents/alice/events", timeout=10) as s:
        lines = s.iter_lines()
        first = next(x for x in lines if x.startswith("data: "))
        assert json.loads(first[6:])["call"] == again["call_id"]
        alice.post(f"/v1/calls/{again['call_id']}/disposition", json={"outcome": "declined"})
        second = next(x for x in lines if x.startswith("data: "))
        assert json.loads(second[6:])["call"] is None

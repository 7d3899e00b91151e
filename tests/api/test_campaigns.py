"""Campaigns over real HTTP: create, read, change, the lifecycle and every illegal transition,
roles, bad input refused whole."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import Client, read_events

ACTIONS = ("approve", "start", "pause", "resume", "stop")
# The only legal moves; every other (state, action) pair must answer 409 naming the state.
LEGAL = {
    ("pending_approval", "approve"): "approved",
    ("approved", "start"): "running",
    ("approved", "stop"): "stopped",
    ("running", "pause"): "paused",
    ("running", "stop"): "stopped",
    ("paused", "resume"): "running",
    ("paused", "stop"): "stopped",
}
PATH_TO = {
    "pending_approval": [],
    "approved": ["approve"],
    "running": ["approve", "start"],
    "paused": ["approve", "start", "pause"],
    "stopped": ["approve", "stop"],
}


def create(c: httpx.Client, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/campaigns", json={**spec, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_create_read_list(admin: httpx.Client, seed_spec: dict[str, Any]) -> None:
    c = create(admin, seed_spec, id="seed")
    assert c["id"] == "seed" and c["state"] == "pending_approval" and c["revision"] == 1
    assert c["windows"] == ["10:00-12:00", "15:30-17:30"]
    assert c["pacing"]["target_abandon_rate"] == 0.03  # defaults filled in
    assert c["ring_timeout_s"] == 25.0 and c["retry_on"] == ["no_answer", "busy", "interrupted"]
    assert admin.get("/v1/campaigns/seed").json() == c
    generated = create(admin, seed_spec)
    assert generated["id"].startswith("c-")
    listed = admin.get("/v1/campaigns").json()["campaigns"]
    assert [x["id"] for x in listed] == ["seed", generated["id"]]
    assert admin.get("/v1/campaigns", params={"state": "running"}).json() == {"campaigns": []}
    r = admin.post("/v1/campaigns", json={**seed_spec, "id": "seed"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


@pytest.mark.parametrize(("state", "action"), list(itertools.product(PATH_TO, ACTIONS)))
def test_every_transition(admin: httpx.Client, client: Client, seed_spec: dict[str, Any], state: str, action: str) -> None:
    create(admin, seed_spec, id="c1")
    for step in PATH_TO[state]:
        assert admin.post(f"/v1/campaigns/c1/{step}").status_code == 200
    assert admin.get("/v1/campaigns/c1").json()["state"] == state
    r = admin.post(f"/v1/campaigns/c1/{action}")
    if (state, action) in LEGAL:
        assert r.status_code == 200, r.text
        assert r.json()["state"] == LEGAL[(state, action)]
    else:
        assert r.status_code == 409, r.text
        assert r.json()["state"] == state
        assert state in r.json()["detail"] and action in r.json()["detail"]
        assert admin.get("/v1/campaigns/c1").json()["state"] == state  # nothing changed


def test_full_lifecycle_is_in_the_event_stream(admin: httpx.Client, seed_spec: dict[str, Any]) -> None:
    create(admin, seed_spec, id="c1")
    for action in ("approve", "start", "pause", "resume", "stop"):
        assert admin.post(f"/v1/campaigns/c1/{action}").status_code == 200
    c = admin.get("/v1/campaigns/c1").json()
    assert c["state"] == "stopped" and c["approved_by"] == "admin:admin" and c["revision"] == 6
    events = read_events(admin, "c1", 6)
    assert [e for _, e, _ in events] == ["created"] + ["state"] * 5
    assert [d["state"] for _, _, d in events] == ["pending_approval", "approved", "running", "paused", "running", "stopped"]
    assert [d.get("from") for _, _, d in events[1:]] == ["pending_approval", "approved", "running", "paused", "running"]
    # Resuming from an event id gives what came after it, nothing before.
    rest = read_events(admin, "c1", 2, since=events[3][0])
    assert [d["state"] for _, _, d in rest] == ["running", "stopped"]


def test_roles(client: Client, seed_spec: dict[str, Any], redis_url: str) -> None:
    anonymous, agent = client(None), client("agent", agent="a1")
    sup1, sup2, admin = client("supervisor", name="sup1"), client("supervisor", name="sup2"), client("admin")
    assert anonymous.get("/v1/campaigns").status_code == 401
    bad = httpx.Client(base_url=str(admin.base_url), headers={"Authorization": "Bearer dlr_nope"})
    assert bad.get("/v1/campaigns").status_code == 401
    bad.close()
    assert agent.get("/v1/campaigns").status_code == 403
    assert agent.post("/v1/campaigns", json=seed_spec).status_code == 403
    create(sup1, seed_spec, id="c1")
    # A supervisor cannot approve its own campaign; another supervisor or an admin can.
    r = sup1.post("/v1/campaigns/c1/approve")
    assert r.status_code == 403 and "another supervisor" in r.json()["detail"]
    assert sup2.post("/v1/campaigns/c1/approve").status_code == 200
    assert sup1.post("/v1/campaigns/c1/start").status_code == 200
    assert agent.post("/v1/campaigns/c1/pause").status_code == 403
    assert sup1.delete("/v1/campaigns/c1").status_code == 403  # admin only
    create(sup1, seed_spec, id="c2")
    assert admin.post("/v1/campaigns/c2/approve").status_code == 200
    assert admin.get("/healthz").json() == {"status": "ok", "redis": "ok"}
    assert anonymous.get("/healthz").status_code == 200


def test_revoked_token_is_refused(client: Client, redis_url: str) -> None:
    from api.auth import list_tokens, revoke_token

    c = client("supervisor", name="leaving")
    assert c.get("/v1/campaigns").status_code == 200
    (rec,) = [t for t in list_tokens(redis_url) if t["name"] == "leaving"]
    assert revoke_token(redis_url, rec["id"])
    # Revoked from another process (the CLI): the server remembers a checked token for 1 s.
    time.sleep(1.05)
    assert c.get("/v1/campaigns").status_code == 401


@pytest.mark.parametrize(("change", "field"), [
    ({"mode": "dialling"}, "mode"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"windows": ["10:00-12:00", "11:00-13:00"]}, "windows"),
    ({"windows": ["25:00-26:00"]}, "windows"),
    ({"country": "XX"}, "country"),
    ({"ring_timeout_s": 10}, "ring_timeout_s"),
    ({"exclusions": ["segment of VIP"]}, "exclusions"),
    ({"ivr_script": "nonexistent"}, "ivr_script"),
    ({"pacing": {"target_abandon_rate": 0.5}}, "target_abandon_rate"),
    ({"pacing": {"max_channels": None}}, "max_channels"),
    ({"start_at": "2026-12-01T10:00:00"}, "start_at"),
    ({"id": "no spaces"}, "id"),
    ({"caller_id": "abc"}, "caller_id"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_bodies_are_refused_with_the_field(admin: httpx.Client, seed_spec: dict[str, Any], change: dict[str, Any], field: str) -> None:
    r = admin.post("/v1/campaigns", json={**seed_spec, **change})
    assert r.status_code == 422, r.text
    text = r.text
    assert field in text, text
    assert admin.get("/v1/campaigns").json() == {"campaigns": []}


def test_patch_merges_validates_whole_and_leaves_nothing_half_done(admin: httpx.Client, seed_spec: dict[str, Any]) -> None:
    create(admin, seed_spec, id="c1")
    r = admin.patch("/v1/campaigns/c1", json={"name": "Renamed", "pacing": {"max_cps": 20}})
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["name"] == "Renamed" and c["pacing"]["max_cps"] == 20 and c["pacing"]["max_channels"] == 100
    assert c["revision"] == 2
    before = admin.get("/v1/campaigns/c1").json()
    # One good field and one bad: nothing applies.
    r = admin.patch("/v1/campaigns/c1", json={"name": "Again", "windows": ["12:00-11:00", "11:30-12:30"]})
    assert r.status_code == 422 and "windows" in r.text
    # Valid alone, invalid as a whole: end before start.
    r = admin.patch("/v1/campaigns/c1", json={"start_at": "2026-12-02T00:00:00+07:00", "end_at": "2026-12-01T00:00:00+07:00"})
    assert r.status_code == 422 and "end_at" in r.text
    # ivr mode needs max_channels: clearing it is refused.
    r = admin.patch("/v1/campaigns/c1/pacing", json={"max_channels": None})
    assert r.status_code == 422 and "max_channels" in r.text
    assert admin.get("/v1/campaigns/c1").json() == before
    assert admin.patch("/v1/campaigns/c1", json={"mode": "manual"}).status_code == 422  # not changeable
    assert admin.patch("/v1/campaigns/nope", json={"name": "x"}).status_code == 404


def test_partitions_share_the_pacing_caps_and_are_for_ivr_campaigns(admin: httpx.Client, seed_spec: dict[str, Any]) -> None:
    """Each partition dials its share of max_channels (docs/pacing.md): fewer channels than
    partitions is refused, at creation and by a later pacing change; an agent campaign has one
    partition (one engine paces for its agents)."""
    r = admin.post("/v1/campaigns", json={**seed_spec, "partitions": 8, "pacing": {"max_channels": 6}})
    assert r.status_code == 422 and "must be at least partitions (8)" in r.text, r.text
    create(admin, seed_spec, id="c6", partitions=6, pacing={"max_channels": 6, "max_cps": 3})
    r = admin.patch("/v1/campaigns/c6/pacing", json={"max_channels": 5})
    assert r.status_code == 422 and "max_channels (5) must be at least partitions (6)" in r.text, r.text
    assert admin.get("/v1/campaigns/c6").json()["pacing"]["max_channels"] == 6
    predictive = {k: v for k, v in seed_spec.items() if k not in ("ivr_script", "sms")}
    r = admin.post("/v1/campaigns", json={**predictive, "mode": "predictive", "partitions": 2,
                                          "pacing": {"target_abandon_rate": 0.03}})
    assert r.status_code == 422 and "a predictive campaign is paced for its agents by one engine" in r.text, r.text


def test_delete(admin: httpx.Client, seed_spec: dict[str, Any], contacts_csv: Any, r: Any) -> None:
    create(admin, seed_spec, id="c1")
    body = contacts_csv([("0901234567", "An", "SILVER"), ("0901234568", "Binh", "BRONZE")])
    assert admin.post("/v1/campaigns/c1/contacts", content=body, headers={"Content-Type": "text/csv"}).status_code == 200
    admin.post("/v1/campaigns/c1/approve")
    admin.post("/v1/campaigns/c1/start")
    resp = admin.delete("/v1/campaigns/c1")
    assert resp.status_code == 409 and resp.json()["state"] == "running"
    admin.post("/v1/campaigns/c1/stop")
    assert admin.delete("/v1/campaigns/c1").status_code == 204
    assert admin.get("/v1/campaigns/c1").status_code == 404
    assert admin.delete("/v1/campaigns/c1").status_code == 404
    # The queue's keys go in the background.
    import time

    deadline = time.monotonic() + 10
    while r.keys("{c:c1*") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.keys("{c:c1*") == []


def test_tokens_over_http(admin: httpx.Client, client: Client) -> None:
    sup = client("supervisor")
    assert sup.post("/v1/tokens", json={"role": "admin"}).status_code == 403
    r = admin.post("/v1/tokens", json={"role": "agent", "name": "Alice's phone", "agent": "alice"})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"].startswith("dlr_") and new["agent"] == "alice"
    assert admin.post("/v1/tokens", json={"role": "agent"}).status_code == 422
    assert admin.post("/v1/tokens", json={"role": "supervisor", "agent": "alice"}).status_code == 422
    listed = admin.get("/v1/tokens").json()
    assert new["id"] in [t["id"] for t in listed] and all("token" not in t for t in listed)
    alice = httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {new['token']}"})
    assert alice.get("/v1/agents/alice").status_code == 404  # authenticated; no such agent yet
    assert admin.delete(f"/v1/tokens/{new['id']}").status_code == 204
    assert alice.get("/v1/agents/alice").status_code == 401
    assert admin.delete(f"/v1/tokens/{new['id']}").status_code == 404
    alice.close()

"""The four-eyes rule holds after approval and across tokens (api/compliance.py, api/auth.py).

Before: the creator could PATCH an approved or running campaign's windows, suppression lists,
exclusions and abandon target, applied live with no second pair of eyes; "someone else approves"
compared token labels, so one person with two tokens approved their own campaign; tokens never
expired; an agent's tokens outlived the agent and worked for a new agent of the same id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.auth import digest
from api.compliance import loosened
from api.schemas import CampaignSpec
from store import tokens
from tests.api.conftest import SEED, Client
from tests.api.test_agents import agent


def spec(**change: Any) -> dict[str, Any]:
    return CampaignSpec.model_validate({**SEED, **change}).model_dump(mode="json")


@pytest.mark.parametrize(("change", "loose"), [
    ({"windows": ["10:00-11:00"]}, []),
    ({"windows": ["10:00-12:00", "15:30-17:00"]}, []),
    ({"windows": ["09:00-12:00", "15:30-17:30"]}, ["windows"]),
    ({"windows": ["10:00-12:00", "15:30-17:30", "20:00-21:00"]}, ["windows"]),
    ({"windows": ["00:00-24:00"]}, ["windows"]),
    ({"timezone": "Asia/Bangkok"}, ["timezone"]),
    ({"max_attempts": 1}, []),
    ({"max_attempts": 3}, ["max_attempts"]),
    ({"exclusions": ["segment in {VIP, GOLD, DIAMOND}", "segment = STAFF"]}, []),
    ({"exclusions": []}, ["exclusions"]),
    ({"pacing": {"max_channels": 100, "max_cps": 50, "target_abandon_rate": 0.01}}, []),
    ({"pacing": {"max_channels": 100, "max_cps": 50, "target_abandon_rate": 0.05}}, ["pacing.target_abandon_rate"]),
    ({"pacing": {"max_channels": 500, "max_cps": 200}}, []),  # how fast is the pacer's, within the target
    ({"sms": {"sender": "Operator", "template": "Call 1900 now"}}, ["sms"]),
    ({"caller_id": "+84280000000"}, ["caller_id"]),
    ({"do_not_call_back_days": 1}, ["do_not_call_back_days"]),
    ({"retry_on": ["no_answer", "busy", "failed"]}, ["retry_on"]),
    ({"end_at": "2030-01-01T00:00:00Z"}, []),
])
def test_what_loosens_an_approved_campaign(change: dict[str, Any], loose: list[str]) -> None:
    assert loosened(spec(), spec(**change)) == loose


def test_a_window_crossing_midnight_and_a_later_start() -> None:
    night = spec(windows=["21:00-01:00"], start_at="2030-01-01T00:00:00Z", end_at="2030-02-01T00:00:00Z")
    assert loosened(night, {**night, "windows": ["22:00-00:30"]}) == []
    assert loosened(night, {**night, "windows": ["20:00-01:00"]}) == ["windows"]
    assert loosened(night, {**night, "start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-20T00:00:00Z"}) == []
    assert loosened(night, {**night, "start_at": None, "end_at": None}) == ["start_at", "end_at"]


def approved_by_another(client: Client, cid: str) -> httpx.Client:
    creator = client("supervisor", name="carol")
    assert creator.post("/v1/campaigns", json={**SEED, "id": cid}).status_code == 201
    assert client("supervisor", name="dave").post(f"/v1/campaigns/{cid}/approve").status_code == 200
    return creator


def test_after_approval_a_supervisor_tightens_but_only_an_admin_loosens(client: Client, admin: httpx.Client) -> None:
    creator = approved_by_another(client, "fe")
    r = creator.patch("/v1/campaigns/fe", json={"windows": ["08:00-12:00", "15:30-17:30"]})
    assert r.status_code == 403, r.text
    assert "only an admin may loosen windows" in r.json()["detail"]
    r = creator.patch("/v1/campaigns/fe/pacing", json={"target_abandon_rate": 0.05})
    assert r.status_code == 403 and "pacing.target_abandon_rate" in r.json()["detail"]
    assert creator.patch("/v1/campaigns/fe", json={"exclusions": []}).status_code == 403
    assert admin.get("/v1/campaigns/fe").json()["windows"] == SEED["windows"]  # nothing applied
    # Tightening is anyone's, at once; the pacer's speed is not a compliance setting.
    assert creator.patch("/v1/campaigns/fe", json={"windows": ["10:00-11:00"]}).status_code == 200
    assert creator.patch("/v1/campaigns/fe/pacing", json={"target_abandon_rate": 0.01, "max_cps": 20}).status_code == 200
    assert creator.post("/v1/campaigns/fe/start").status_code == 200
    assert creator.patch("/v1/campaigns/fe", json={"windows": ["10:00-12:00"]}).status_code == 403  # running: the same
    r = admin.patch("/v1/campaigns/fe", json={"windows": ["08:00-12:00"], "exclusions": []})
    assert r.status_code == 200 and r.json()["windows"] == ["08:00-12:00"]


def test_before_approval_anything_may_change(client: Client) -> None:
    sup = client("supervisor", name="erin")
    assert sup.post("/v1/campaigns", json={**SEED, "id": "pend"}).status_code == 201
    assert sup.patch("/v1/campaigns/pend", json={"windows": ["00:00-24:00"], "exclusions": []}).status_code == 200


def test_one_person_with_two_tokens_cannot_approve_their_own_campaign(client: Client) -> None:
    first, second = client("supervisor", name="Alice Nguyen"), client("supervisor", name="  alice  nguyen ")
    assert first.post("/v1/campaigns", json={**SEED, "id": "own"}).status_code == 201
    r = second.post("/v1/campaigns/own/approve")
    assert r.status_code == 403, r.text
    assert "this token or another one" in r.json()["detail"]
    assert client("supervisor", name="Bao Tran").post("/v1/campaigns/own/approve").status_code == 200


def test_a_supervisor_token_names_its_holder(admin: httpx.Client) -> None:
    r = admin.post("/v1/tokens", json={"role": "supervisor"})
    assert r.status_code == 422 and "names the person" in r.text
    r = admin.post("/v1/tokens", json={"role": "supervisor", "name": "Chi", "expires_in_s": 3600})
    assert r.status_code == 201
    at = datetime.fromisoformat(r.json()["expires_at"])
    assert timedelta(minutes=59) < at - datetime.now(UTC) <= timedelta(hours=1)
    assert admin.post("/v1/tokens", json={"role": "admin", "name": "x", "expires_in_s": 400 * 86_400}).status_code == 422


def test_an_expired_token_is_refused(server: Any, redis_url: str) -> None:
    token = "dlr_expired-" + "x" * 32
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    tokens.add_sync(redis_url, digest(token), {"id": digest(token)[:12], "role": "admin", "name": "old", "agent": None,
                                               "created_at": past, "expires_at": past})
    r = httpx.get(server.base_url + "/v1/campaigns", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    # A token stored before expiry existed lapses 30 days after its creation.
    old = "dlr_legacy-" + "y" * 32
    created = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    tokens.add_sync(redis_url, digest(old), {"id": digest(old)[:12], "role": "admin", "name": "", "agent": None,
                                             "created_at": created})
    assert httpx.get(server.base_url + "/v1/campaigns", headers={"Authorization": f"Bearer {old}"}).status_code == 401


def test_deleting_an_agent_revokes_its_tokens(admin: httpx.Client, client: Client) -> None:
    agent(admin, "bob")
    bob = client("agent", agent="bob")
    assert bob.get("/v1/agents/bob").status_code == 200
    assert admin.delete("/v1/agents/bob").status_code == 204
    agent(admin, "bob")  # a new Bob, same id
    assert bob.get("/v1/agents/bob").status_code == 401

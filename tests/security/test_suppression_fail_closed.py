"""Suppression lists fail closed (api/routes/lists.py, core-rs queue/claim.rs).

Before: a supervisor emptied the do-not-call list with `PUT ...?mode=replace` and an empty body
(the same effect as the admin-only DELETE); a campaign naming a deleted list dialled as if the
list were empty."""

from __future__ import annotations

from typing import Any

import dialer_core
import httpx
import pytest

from tests.api.conftest import SEED, Client
from tests.api.test_agents import MANUAL, agent
from tests.api.test_contacts import upload


def dnc(c: httpx.Client, body: bytes = b"0901000002\n", **params: str) -> httpx.Response:
    return c.put("/v1/suppression-lists/dnc", params={"country": "VN", **params}, content=body)


def test_a_supervisor_cannot_empty_a_list_but_can_add_to_it(admin: httpx.Client, client: Client) -> None:
    sup = client("supervisor", name="sam")
    assert dnc(sup).status_code == 200  # a new list: anyone who runs campaigns
    r = dnc(sup, b"")
    assert r.status_code == 403 and "mode=append" in r.json()["detail"]
    assert dnc(sup, b"0901000003\n", mode="append").json()["total"] == 2
    assert admin.get("/v1/suppression-lists/dnc").json()["count"] == 2
    assert dnc(admin, b"0901000004\n").json()["total"] == 1  # an admin replaces


def test_a_list_in_use_cannot_be_deleted_and_unknown_lists_are_refused(admin: httpx.Client) -> None:
    r = admin.post("/v1/campaigns", json={**SEED, "id": "s1", "suppression_lists": ["nope"]})
    assert r.status_code == 422 and "no suppression list 'nope'" in r.text
    assert dnc(admin).status_code == 200
    assert admin.post("/v1/campaigns", json={**SEED, "id": "s1", "suppression_lists": ["dnc"]}).status_code == 201
    assert admin.patch("/v1/campaigns/s1", json={"suppression_lists": ["dnc", "typo"]}).status_code == 422
    r = admin.delete("/v1/suppression-lists/dnc")
    assert r.status_code == 409 and "s1" in r.json()["detail"]
    assert admin.post("/v1/campaigns/s1/approve").status_code == 200
    assert admin.post("/v1/campaigns/s1/stop").status_code == 200
    assert admin.delete("/v1/suppression-lists/dnc").status_code == 204  # finished campaigns do not hold it


@pytest.fixture
def honouring(admin: httpx.Client) -> dict[str, Any]:
    """A running manual campaign honouring `dnc`, three customers queued."""
    assert dnc(admin).status_code == 200
    spec = {**MANUAL, "id": "fc", "suppression_lists": ["dnc"]}
    assert admin.post("/v1/campaigns", json=spec).status_code == 201
    body = b"phone,name\n0902000000,A\n0902000001,B\n0902000002,C\n"
    assert upload(admin, "fc", body).json()["accepted"] == 3
    for action in ("approve", "start"):
        assert admin.post(f"/v1/campaigns/fc/{action}").status_code == 200
    return spec


def test_a_campaign_whose_list_is_gone_dials_nobody(honouring: dict[str, Any], admin: httpx.Client, client: Client,
                                                    redis_url: str) -> None:
    # Deleted behind the API's back (the core's own call, as `dialer` or a script would).
    assert dialer_core.delete_suppression_list(redis_url, "dnc")
    q = dialer_core.CallQueue(redis_url, "fc")
    with pytest.raises(dialer_core.ListMissing, match="dnc"):
        q.claim(10)
    agent(admin, "ann")
    ann = client("agent", agent="ann")
    assert ann.post("/v1/campaigns/fc/agents/ann/join").status_code == 200
    r = ann.post("/v1/agents/ann/next", json={})
    assert r.status_code == 409 and r.json()["state"] == "suppression_list_missing", r.text
    # Nothing was dialled or counted: every contact is back in the queue (released, due at
    # once), no attempt made.
    contacts = admin.get("/v1/campaigns/fc/contacts").json()["contacts"]
    assert len(contacts) == 3 and all(x["attempts"] == 0 and x["state"] in ("ready", "waiting_retry") for x in contacts)
    # The list is back: dialling goes on.
    assert dnc(admin).status_code == 200
    assert ann.post("/v1/agents/ann/next", json={}).json()["customer"] is not None

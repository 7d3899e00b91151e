"""Taking part in a campaign is checked on every hand-out, not only at join: an agent taken off
the campaign's `agents` list gets none of its customers any more (before, one who had joined
kept receiving them)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Client
from tests.api.test_agents import agent, running_manual


def test_an_agent_removed_from_the_list_gets_no_next_customer(admin: httpx.Client, client: Client) -> None:
    running_manual(admin, numbers=3, cid="al", agents=["alice", "bob"])
    agent(admin, "alice")
    agent(admin, "bob")
    alice = client("agent", agent="alice")
    assert alice.post("/v1/campaigns/al/agents/alice/join").status_code == 200
    first = alice.post("/v1/agents/alice/next", json={}).json()["customer"]
    assert first is not None
    assert alice.post(f"/v1/calls/{first['call_id']}/disposition", json={"outcome": "agreed"}).status_code == 200
    assert admin.patch("/v1/campaigns/al", json={"agents": ["bob"]}).status_code == 200
    r = alice.post("/v1/agents/alice/next", json={})
    assert r.status_code == 409, r.text

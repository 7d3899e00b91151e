"""Prepare a running `dialer serve` for the Locust load test, over HTTP only, and write what the
locustfile needs (campaign id, an ops token, agents with their tokens) to a JSON file.

    python loadtest/api_setup.py --url http://127.0.0.1:8080 --token <admin token> \\
        --contacts 200000 --agents 60 --out loadtest-setup.json

It creates a manual-mode campaign (so that agents ask for their next customer) with a generated
list of contacts, approves and starts it, creates the agents, joins them, and gives each a token.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import dialer_core
import httpx


def setup(url: str, admin_token: str, contacts: int, agents: int, campaign: str) -> dict[str, object]:
    h = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, headers=h, timeout=600) as c:
        r = c.post("/v1/campaigns", json={
            "id": campaign, "name": "Locust load", "mode": "manual", "caller_id": "0281234567", "country": "VN",
            "survey": [{"id": "satisfied", "text": "Satisfied?", "choices": ["yes", "no"]}],
        })
        r.raise_for_status()
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "contacts.csv"
            dialer_core.generate_sample(path, contacts, seed=11, invalid_ratio=0.0, duplicate_ratio=0.0)
            with open(path, "rb") as fh:
                report = c.post(f"/v1/campaigns/{campaign}/contacts", content=fh, headers={"Content-Type": "text/csv"})
            report.raise_for_status()
        for action in ("approve", "start"):
            c.post(f"/v1/campaigns/{campaign}/{action}").raise_for_status()
        ops = c.post("/v1/tokens", json={"role": "supervisor", "name": "locust ops"})
        ops.raise_for_status()
        pool = []
        for i in range(agents):
            aid = f"load-{i:04d}"
            c.post("/v1/agents", json={"id": aid, "name": f"Load {i}", "sip_uri": f"sip:{aid}@127.0.0.1"}).raise_for_status()
            c.post(f"/v1/campaigns/{campaign}/agents/{aid}/join").raise_for_status()
            t = c.post("/v1/tokens", json={"role": "agent", "name": f"locust {aid}", "agent": aid})
            t.raise_for_status()
            pool.append({"id": aid, "token": t.json()["token"]})
    return {"campaign": campaign, "ops_token": ops.json()["token"], "agents": pool, "contacts": report.json()["accepted"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--token", required=True, help="an admin token (dialer token create --role admin)")
    p.add_argument("--contacts", type=int, default=200_000)
    p.add_argument("--agents", type=int, default=60)
    p.add_argument("--campaign", default="locust")
    p.add_argument("--out", type=Path, default=Path("loadtest-setup.json"))
    a = p.parse_args()
    data = setup(a.url, a.token, a.contacts, a.agents, a.campaign)
    a.out.write_text(json.dumps(data, indent=1))
    print(f"campaign {a.campaign}: {data['contacts']:,} contacts, {a.agents} agents; wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

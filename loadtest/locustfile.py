"""Locust load on the control API: ops staff watching and tuning a campaign, and agents taking
customers one after the other (manual mode: next, then disposition).

Needs a server prepared by `loadtest/api_setup.py`; point DIALER_LOCUST_SETUP at its JSON:

    DIALER_LOCUST_SETUP=loadtest-setup.json locust -f loadtest/locustfile.py --headless \\
        --host http://127.0.0.1:8080 --users 60 --spawn-rate 60 --run-time 60s

Each simulated user paces itself (DIALER_LOCUST_RPS per user, default 1 request/s) with
exponential gaps between its requests, so the offered load is users x rate whatever the latency
(60 users at 8.5/s offer about 500 requests/s) and arrivals are Poisson, as from many people.
Evenly spaced requests (Locust's constant_throughput) keep the phases users start with, which
makes the whole load arrive in bursts. Agents take ids from the setup's pool in turn.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from typing import Any

import gevent
from locust import FastHttpUser, User, task

SETUP: dict[str, Any] = json.loads(open(os.environ.get("DIALER_LOCUST_SETUP", "loadtest-setup.json")).read())
RATE = float(os.environ.get("DIALER_LOCUST_RPS", "1"))
CAMPAIGN = SETUP["campaign"]
_agents = itertools.cycle(SETUP["agents"])
_lock = threading.Lock()
OUTCOMES = ["agreed", "declined", "no_answer", "busy", "wrong_number"]


def poisson_throughput(rate: float) -> Any:
    """A wait_time for `rate` task starts per second on average, with exponential gaps: each start
    is the previous one plus a random gap (at once if the task overran it)."""

    def wait(user: User) -> float:
        now = time.monotonic()
        due = user.__dict__.get("_due", now) + random.expovariate(rate)
        user.__dict__["_due"] = max(due, now)
        return max(0.0, due - now)

    return wait


def random_phase() -> None:
    """Users spawned together would otherwise all send their first request at once."""
    gevent.sleep(random.expovariate(RATE))


class Ops(FastHttpUser):
    """A supervisor's dashboard: stats most, pacing and contacts pages, now and then a tuning."""

    weight = 1
    wait_time = poisson_throughput(RATE)

    def on_start(self) -> None:
        random_phase()
        self.h = {"Authorization": f"Bearer {SETUP['ops_token']}"}
        self.ratio = 3.0

    @task(6)
    def stats(self) -> None:
        self.client.get(f"/v1/campaigns/{CAMPAIGN}/stats", headers=self.h, name="stats")

    @task(2)
    def pacing(self) -> None:
        self.client.get(f"/v1/campaigns/{CAMPAIGN}/pacing", headers=self.h, name="pacing")

    @task(1)
    def tune(self) -> None:
        # The dial ratio, not the abandon target: after approval a supervisor may lower the target
        # but only an admin raises it again (the four-eyes rule), and this flips back and forth.
        self.ratio = 2.5 if self.ratio == 3.0 else 3.0
        self.client.patch(f"/v1/campaigns/{CAMPAIGN}/pacing", json={"max_dial_ratio": self.ratio}, headers=self.h,
                          name="pacing PATCH")

    @task(1)
    def contacts(self) -> None:
        self.client.get(f"/v1/campaigns/{CAMPAIGN}/contacts?limit=50", headers=self.h, name="contacts")


class Agent(FastHttpUser):
    """An agent in manual mode: asks for the next customer, then sets the disposition."""

    weight = 3
    wait_time = poisson_throughput(RATE)

    def on_start(self) -> None:
        random_phase()
        with _lock:
            me = next(_agents)
        self.agent = me["id"]
        self.h = {"Authorization": f"Bearer {me['token']}"}
        # A call left open by an earlier run is finished first.
        r = self.client.get(f"/v1/agents/{self.agent}", headers=self.h, name="agent")
        self.call: str | None = r.json()["call"] if r.status_code == 200 else None

    @task
    def work(self) -> None:
        if self.call is None:
            r = self.client.post(f"/v1/agents/{self.agent}/next", json={"campaign": CAMPAIGN}, headers=self.h, name="next")
            if r.status_code == 200:
                customer = r.json()["customer"]
                self.call = customer["call_id"] if customer else None
        else:
            outcome = random.choice(OUTCOMES)
            body: dict[str, Any] = {"outcome": outcome}
            if outcome == "agreed":
                body["answers"] = {"satisfied": random.choice(["yes", "no"])}
            self.client.post(f"/v1/calls/{self.call}/disposition", json=body, headers=self.h, name="disposition")
            self.call = None

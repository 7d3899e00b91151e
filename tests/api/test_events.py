"""A campaign's Server-Sent Events, read by the API's one shared reader: clients joining while
events pour in miss none and get none twice; a client resuming with Last-Event-ID gets exactly
what came after; listeners of two campaigns each get their own."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.api.test_campaigns import create

SPEC = {"name": "E", "mode": "progressive", "caller_id": "0281234567"}


def listen(c: httpx.Client, cid: str, n: int, out: list[str], ready: threading.Event,
           headers: dict[str, str] | None = None) -> None:
    """Collect the ids of the next `n` `pacing` events (from now, or after Last-Event-ID)."""
    with c.stream("GET", f"/v1/campaigns/{cid}/events", headers=headers, timeout=30) as r:
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            ready.set()  # the retry hint came: the stream is open
            if line == "":
                if fields.get("event") == "pacing":
                    out.append(fields["id"] + " " + str(json.loads(fields["data"])["changed"]["pacing"]["max_dial_ratio"]))
                    if len(out) == n:
                        return
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value


def test_live_listeners_joining_mid_burst_miss_nothing_and_repeat_nothing(admin: httpx.Client) -> None:
    for cid in ("ev1", "ev2"):
        create(admin, SPEC, id=cid)
    ratios = [round(1.0 + i * 0.01, 2) for i in range(60)]
    got: dict[str, list[str]] = {"a": [], "b": [], "other": []}
    early, late, other = threading.Event(), threading.Event(), threading.Event()
    threads = [threading.Thread(target=listen, args=(admin, "ev1", 60, got["a"], early), daemon=True),
               threading.Thread(target=listen, args=(admin, "ev2", 5, got["other"], other), daemon=True)]
    for t in threads:
        t.start()
    assert early.wait(10) and other.wait(10)
    for i, ratio in enumerate(ratios):
        if i == 20:  # a second listener of ev1 joins while the changes pour in
            t = threading.Thread(target=listen, args=(admin, "ev1", 40, got["b"], late), daemon=True)
            t.start()
            threads.append(t)
            assert late.wait(10)
            b_from = i
        assert admin.patch("/v1/campaigns/ev1/pacing", json={"max_dial_ratio": ratio}).status_code == 200
    for i in range(5):
        admin.patch("/v1/campaigns/ev2/pacing", json={"max_dial_ratio": 2.0 + i / 10})
    for t in threads:
        t.join(20)
    assert [x.split()[1] for x in got["a"]] == [str(r) for r in ratios]
    # Joined live after 20 changes: exactly the 40 after it, no gap, no repeat.
    assert [float(x.split()[1]) for x in got["b"]] == ratios[b_from:]
    assert got["b"] == got["a"][b_from:]  # the same ids
    assert len(set(got["a"])) == 60
    assert [float(x.split()[1]) for x in got["other"]] == [2.0, 2.1, 2.2, 2.3, 2.4]


def test_last_event_id_resumes_after_that_event(admin: httpx.Client) -> None:
    create(admin, SPEC, id="ev3")
    for i in range(10):
        admin.patch("/v1/campaigns/ev3/pacing", json={"max_dial_ratio": 1.0 + i / 10})
    everything: list[str] = []
    listen_all = threading.Event()
    listen(admin, "ev3", 10, everything, listen_all, headers={"Last-Event-ID": "0-1"})
    assert [float(x.split()[1]) for x in everything] == [1.0 + i / 10 for i in range(10)]
    middle = everything[4].split()[0]
    rest: list[str] = []
    listen(admin, "ev3", 5, rest, threading.Event(), headers={"Last-Event-ID": middle})
    assert rest == everything[5:]


def test_the_feed_follows_only_what_is_listened_to(admin: httpx.Client, server: Any) -> None:
    """Listeners come and go; a campaign nobody listens to any more is not read."""
    create(admin, SPEC, id="ev4")
    for i in range(3):
        got: list[str] = []
        ready = threading.Event()
        t = threading.Thread(target=listen, args=(admin, "ev4", 1, got, ready), daemon=True)
        t.start()
        assert ready.wait(10)
        admin.patch("/v1/campaigns/ev4/pacing", json={"max_dial_ratio": 1.5 + i / 10})
        t.join(10)
        assert [float(x.split()[1]) for x in got] == [1.5 + i / 10]
    assert "Traceback" not in server.log_text()

"""Randomised operations on a real queue, checked step by step against a model of it.

Claims (with leases that expire), completions of every kind, stale and repeated completions and
a moving clock: after every step the queue must agree with the model on what may be delivered,
in which priority, with how many attempts, and what each completion did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

import dialer_core as dc

T0 = 1_800_000_000.0
MAX_ATTEMPTS = 3
RETRY_DELAY = 100.0
LEASE = 50.0


@dataclass
class Contact:
    state: str = "fresh"  # fresh | leased | waiting | callback | done
    attempts: int = 0
    token: int | None = None
    deadline: float = 0.0
    due: float = 0.0
    agent: str | None = None


def reap(model: dict[str, Contact], now: float) -> None:
    """What the claim script does first: leases past their deadline wait again, due at it."""
    for c in model.values():
        if c.state == "leased" and c.deadline <= now:
            c.state, c.due, c.token = "waiting", c.deadline, None


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_queue_agrees_with_its_model(redis_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    numbers = [f"+8490{i:07d}" for i in range(150)]
    (tmp_path / "l.txt").write_text("\n".join(numbers) + "\n")
    dc.import_contacts(redis_url, tmp_path / "l.txt", "m", country="VN")
    q = dc.CallQueue(redis_url, "m", max_attempts=MAX_ATTEMPTS, retry_delay_s=RETRY_DELAY)
    model = {n: Contact() for n in numbers}
    held: list[dc.Claim] = []   # live claims
    old: list[dc.Claim] = []    # claims whose tokens should now be stale
    now = T0

    for _ in range(400):
        now += rng.choice([0.0, 0.0, 1.0, 7.5, 30.0, 49.0, 60.0, 120.0])
        if rng.random() < 0.5:
            reap(model, now)
            k = rng.randint(1, 40)
            got = q.claim(k, now=now, lease_s=LEASE)
            cb_due = {n for n, c in model.items() if c.state == "callback" and c.due <= now}
            retry_due = {n for n, c in model.items() if c.state == "waiting" and c.due <= now}
            fresh = [n for n in numbers if model[n].state == "fresh"]
            eligible = len(cb_due) + len(retry_due) + len(fresh)
            assert len(got) == min(k, eligible)
            names = [c.number for c in got]
            assert len(set(names)) == len(names)
            taken = set(names)
            assert taken <= cb_due | retry_due | set(fresh), "delivered something not due"
            if cb_due - taken:
                assert not taken & (retry_due | set(fresh)), "a retry or fresh contact went before a due callback"
            if retry_due - taken:
                assert not taken & set(fresh), "a fresh contact went before a due retry"
            # fresh contacts come in file order
            fresh_taken = [n for n in names if n in set(fresh)]
            assert fresh_taken == fresh[: len(fresh_taken)]
            for c in got:
                m = model[c.number]
                assert c.attempts == m.attempts
                assert c.source == {"callback": "callback", "waiting": "retry", "fresh": "fresh"}[m.state]
                if m.state == "callback":
                    assert c.agent == m.agent
                for h in list(held):
                    if h.number == c.number:  # its earlier lease expired
                        held.remove(h)
                        old.append(h)
                m.state, m.token, m.deadline, m.agent = "leased", c.token, now + LEASE, None
                held.append(c)
        else:
            batch: list[dc.Completion] = []
            expect: list[str] = []
            chosen = rng.sample(held, min(len(held), rng.randint(0, 15)))
            for c in chosen:
                m = model[c.number]
                live = m.state == "leased" and m.token == c.token
                kind = rng.choice(["answered", "no_answer", "busy", "callback", "dnc", "release"])
                if kind == "callback":
                    item = dc.Completion(c.number, c.token, "answered", callback_at=now + 30, agent="ag-1")
                elif kind == "dnc":
                    item = dc.Completion(c.number, c.token, "answered", do_not_call_back_until=now + 500)
                elif kind == "release":
                    item = dc.Completion(c.number, c.token, "not_placed", release=True)
                else:
                    item = dc.Completion(c.number, c.token, kind)
                batch.append(item)
                held.remove(c)
                old.append(c)
                if not live:
                    expect.append("stale")
                    continue
                if kind == "release":
                    m.state, m.due = "waiting", now
                    expect.append("released")
                    continue
                m.attempts += 1
                if kind == "answered":
                    m.state = "done"
                    expect.append("final")
                elif kind in ("no_answer", "busy"):
                    if m.attempts < MAX_ATTEMPTS:
                        m.state, m.due = "waiting", now + RETRY_DELAY
                        expect.append("retry")
                    else:
                        m.state = "done"
                        expect.append("exhausted")
                elif kind == "callback":
                    m.state, m.due, m.agent = "callback", now + 30, "ag-1"
                    expect.append("callback")
                else:
                    m.state, m.due = "waiting", now + 500
                    expect.append("do_not_call_back")
            # and a few stale tokens: completed or expired claims
            for c in rng.sample(old, min(len(old), rng.randint(0, 3))):
                m = model[c.number]
                if m.state == "leased" and m.token == c.token:
                    continue  # still live (an expired lease not yet reaped): not stale
                batch.append(dc.Completion(c.number, c.token, "answered"))
                expect.append("stale")
            assert q.complete(batch, now=now) == expect
        for n in rng.sample(numbers, 5):
            st = q.contact(n)
            m = model[n]
            assert st is not None
            if m.state == "leased":
                assert st["state"] == "claimed" and st["attempts"] == m.attempts
            elif m.state == "done":
                assert st["state"] == "done" and st["attempts"] == m.attempts

    # Drain: everything not done is delivered again, once, and can be finished.
    now += 10_000
    while claims := q.claim(100, now=now, lease_s=LEASE):
        assert q.complete([(c, "answered") for c in claims], now=now) == ["final"] * len(claims)
        for c in claims:
            assert model[c.number].state != "done", f"{c.number} delivered after it was done"
            model[c.number].state = "done"
    assert all(m.state == "done" for m in model.values()), "a contact was lost"

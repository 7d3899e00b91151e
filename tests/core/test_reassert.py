"""Redis loses writes it had acknowledged (a restart from an AOF missing its last second): the
claims of the lost second come back as fresh contacts, and the completions as live leases. A
claim then refuses to claim (`RedisRewound`) until the dialer re-asserts what it still has in
progress (core-rs queue/lease.rs, lua/reassert.lua), so that nobody is handed out twice.

The loss is made on a real Redis by putting the partition's keys back as they were (DUMP then
RESTORE): what an AOF missing its last writes gives back."""

from __future__ import annotations

import dialer_core as dc
import pytest
import redis

T0 = 1_800_000_000.0
NUMBERS = [f"+8490100{i:04d}" for i in range(10)]


def snapshot(r: redis.Redis, cid: str) -> dict[bytes, bytes]:
    return {k: r.dump(k) for k in r.scan_iter(match=f"{{c:{cid}:p0}}*")}


def lose_since(r: redis.Redis, cid: str, snap: dict[bytes, bytes]) -> None:
    for k in r.scan_iter(match=f"{{c:{cid}:p0}}*"):
        r.delete(k)
    for k, v in snap.items():
        r.restore(k, 0, v)


def state(q: dc.CallQueue, number: str) -> tuple[str, int, str | None]:
    st = q.contact(number)
    assert st is not None
    return st["state"], st["attempts"], st["last_outcome"]


def test_lost_claims_and_completions_are_reasserted_before_anything_is_claimed(redis_url: str, write, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    path = write("ra.txt", "".join(n + "\n" for n in NUMBERS))
    assert dc.import_contacts(redis_url, path, "ra", country="VN")["accepted"] == 10
    q = dc.CallQueue(redis_url, "ra", retry_delay_s=60.0)
    first = q.claim(3, lease_s=30, now=T0, dialling=True, owner="n1")
    snap = snapshot(r, "ra")  # what survives
    # The last second, lost: three more claimed, one of the first completed, one answered.
    second = q.claim(3, lease_s=30, now=T0 + 1, dialling=True, owner="n1")
    assert q.complete([(first[0], "busy")], now=T0 + 1) == ["retry"]
    assert q.mark([second[0]], answered=True, details=["dialog"]) == 1
    lose_since(r, "ra", snap)
    assert [c["state"] for c in q.contacts(count=10)["contacts"]].count("ready") == 7  # the second claim is gone

    # Nothing is claimed on a rewound partition: those three would be called twice.
    with pytest.raises(dc.RedisRewound, match="lost writes"):
        q.claim(5, lease_s=30, now=T0 + 2, dialling=True, owner="n1")

    in_progress = [*first[1:], *second]
    journal = [first[0]]  # completed in the last seconds
    marks = ["d|n1", "d|n1", "a|dialog", "d|n1", "d|n1", "d|n1"]
    got = q.reassert(in_progress + journal, marks, lease_s=30, now=T0 + 2)
    assert got == ["held", "held", "restored", "restored", "restored", "held"]
    # The lost completion, applied again.
    assert q.complete([(first[0], "busy")], now=T0 + 2) == ["retry"]

    # Claims work again, and hand out only what nobody has: the four never claimed.
    rest = q.claim(10, lease_s=30, now=T0 + 3, dialling=True, owner="n1")
    held = {c.number for c in in_progress} | {first[0].number}
    assert len(rest) == 4 and not {c.number for c in rest} & held
    assert min(c.token for c in rest) > max(c.token for c in second)  # tokens never reused

    # The restored ones count as what they were if this dialer dies now: the answered one final.
    q.claim(1, now=T0 + 40)
    found = {n: res for n, _, _, res in q.take_interrupted()}
    assert found[second[0].number] == "answered" and found[second[1].number] == "retry", found
    assert state(q, second[0].number) == ("done", 1, "answered")
    assert state(q, first[0].number) == ("waiting_retry", 1, "busy")

    # Re-asserting what moved on since changes nothing: done.
    assert q.reassert([first[0], second[0]], ["d|n1", "a|dialog"], lease_s=30, now=T0 + 41) == ["done", "done"]


def test_a_claim_leased_to_someone_else_meanwhile_is_left_to_it(redis_url: str, write, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    path = write("rb.txt", "".join(n + "\n" for n in NUMBERS[:2]))
    dc.import_contacts(redis_url, path, "rb", country="VN")
    q = dc.CallQueue(redis_url, "rb")
    snap = snapshot(r, "rb")
    (mine,) = q.claim(1, lease_s=30, now=T0, dialling=True)
    lose_since(r, "rb", snap)
    # Another claimer leased it after the loss, under a token of its own.
    r.hset("{c:rb:p0}:lh", mine.number.lstrip("+"), f"{mine.token + 7}|0|")
    assert q.reassert([mine], ["d"], lease_s=30, now=T0 + 2) == ["taken"]
    assert q.complete([(mine, "busy")], now=T0 + 3) == ["stale"]


def test_reassert_checks_its_arguments(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    path = write("rc.txt", NUMBERS[0] + "\n")
    dc.import_contacts(redis_url, path, "rc", country="VN")
    q = dc.CallQueue(redis_url, "rc")
    (c,) = q.claim(1, now=T0)
    with pytest.raises(dc.InvalidInput, match="1 claims"):
        q.reassert([c], [], now=T0)
    assert q.reassert([], [], now=T0) == []

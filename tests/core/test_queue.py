"""The call queue against a real redis-server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

import dialer_core as dc

T0 = 1_800_000_000.0  # a fixed "now" (epoch seconds): tests drive the clock


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+8490{start + i:07d}" for i in range(n)]


def load(redis_url: str, path: Path, campaign: str, nums: list[str], **kw: object) -> dc.ImportReport:
    path.write_text("\n".join(nums) + "\n")
    return dc.import_contacts(redis_url, path, campaign, country="VN", **kw)  # type: ignore[arg-type]


def test_claim_leases_each_contact_once_in_file_order(redis_url: str, tmp_path: Path) -> None:
    nums = numbers(10)
    assert load(redis_url, tmp_path / "l.txt", "c1", nums)["accepted"] == 10
    q = dc.CallQueue(redis_url, "c1")
    a = q.claim(4, now=T0)
    b = q.claim(10, now=T0)
    assert [c.number for c in a + b] == nums
    assert {c.source for c in a + b} == {"fresh"}
    assert len({c.token for c in a + b}) == 10
    assert q.claim(10, now=T0) == []
    s = q.stats(now=T0)
    assert (s["ready"], s["leased"]) == (0, 10)


def test_completing_twice_or_with_a_wrong_token_changes_nothing(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(2))
    q = dc.CallQueue(redis_url, "c1")
    c1, c2 = q.claim(2, now=T0)
    assert q.complete([(c1.number, c1.token + 999, "answered")], now=T0) == ["stale"]
    assert q.complete([(c1, "answered")], now=T0) == ["final"]
    assert q.complete([(c1, "answered")], now=T0) == ["stale"]
    assert q.contact(c1.number)["state"] == "done"  # type: ignore[index]
    assert q.contact(c2.number)["state"] == "claimed"  # type: ignore[index]
    assert q.stats(now=T0)["counters"]["stale"] == 2


def test_retry_is_never_delivered_before_its_time(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(1))
    q = dc.CallQueue(redis_url, "c1", max_attempts=2, retry_delay_s=600)
    (c,) = q.claim(1, now=T0)
    assert q.complete([(c, "no_answer")], now=T0) == ["retry"]
    assert q.claim(1, now=T0 + 599.998) == []
    (again,) = q.claim(1, now=T0 + 600.0)
    assert (again.number, again.attempts, again.source) == (c.number, 1, "retry")


def test_no_third_attempt_when_max_attempts_is_2(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(3))
    q = dc.CallQueue(redis_url, "c1", max_attempts=2, retry_delay_s=60)
    first = q.claim(3, now=T0)
    assert q.complete([(c, "no_answer") for c in first], now=T0) == ["retry"] * 3
    second = q.claim(3, now=T0 + 61)
    assert [c.attempts for c in second] == [1, 1, 1]
    assert q.complete([(c, "busy") for c in second], now=T0 + 61) == ["exhausted"] * 3
    assert q.claim(3, now=T0 + 10 * 86400) == []
    st = q.contact(first[0].number)
    assert st is not None and (st["state"], st["attempts"], st["last_outcome"]) == ("done", 2, "busy")


def test_due_callbacks_go_before_due_retries_before_fresh(redis_url: str, tmp_path: Path) -> None:
    nums = numbers(6)
    load(redis_url, tmp_path / "l.txt", "c1", nums)
    q = dc.CallQueue(redis_url, "c1", retry_delay_s=10)
    a, b, c = q.claim(3, now=T0)
    q.complete(
        [
            (a, "no_answer"),
            dc.Completion(b.number, b.token, "answered", callback_at=T0 + 20, agent="agent-7"),
            dc.Completion(c.number, c.token, "answered", callback_at=T0 + 1000, agent="agent-8"),
        ],
        now=T0,
    )
    got = q.claim(3, now=T0 + 30)
    assert [(x.number, x.source) for x in got] == [(b.number, "callback"), (a.number, "retry"), (nums[3], "fresh")]
    assert got[0].agent == "agent-7"
    assert q.stats(now=T0 + 30)["callbacks_waiting"] == 1


def test_do_not_call_back_holds_the_contact_until_its_time(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(1))
    q = dc.CallQueue(redis_url, "c1")
    (c,) = q.claim(1, now=T0)
    done = q.complete([dc.Completion(c.number, c.token, "answered", do_not_call_back_until=T0 + 7 * 86400)], now=T0)
    assert done == ["do_not_call_back"]
    st = q.contact(c.number)
    assert st is not None and st["state"] == "do_not_call_back" and st["time"] == T0 + 7 * 86400
    assert q.claim(1, now=T0 + 7 * 86400 - 1) == []
    assert [x.number for x in q.claim(1, now=T0 + 7 * 86400)] == [c.number]


def test_expired_lease_is_delivered_again_and_the_late_completion_is_stale(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(5))
    q = dc.CallQueue(redis_url, "c1")
    held = q.claim(5, now=T0, lease_s=30)
    assert q.claim(5, now=T0 + 29.9) == []
    again = q.claim(5, now=T0 + 30.001)
    assert sorted(c.number for c in again) == sorted(c.number for c in held)
    assert all(c.attempts == 0 and c.source == "retry" for c in again)
    assert q.complete([(c, "answered") for c in held], now=T0 + 31) == ["stale"] * 5
    assert q.complete([(c, "answered") for c in again], now=T0 + 31) == ["final"] * 5
    assert q.stats(now=T0 + 31)["counters"]["lease_expired"] == 5


def test_a_callback_goes_only_to_its_agent(redis_url: str, tmp_path: Path) -> None:
    nums = numbers(4)
    load(redis_url, tmp_path / "l.txt", "c1", nums)
    q = dc.CallQueue(redis_url, "c1")
    a, b = q.claim(2, now=T0)
    q.complete([dc.Completion(a.number, a.token, "later", callback_at=T0 + 10, agent="ann"),
                dc.Completion(b.number, b.token, "later", callback_at=T0 + 10, agent="bob")], now=T0)
    # Bob is the only agent ready: his callback, then fresh contacts; Ann's waits for her.
    got = q.claim(2, now=T0 + 20, agents=["bob"])
    assert [(x.number, x.source, x.agent) for x in got] == [(b.number, "callback", "bob"), (nums[2], "fresh", None)]
    assert [x.number for x in q.claim(1, now=T0 + 20, agents=[])] == [nums[3]]  # no callback at all
    assert q.claim(1, now=T0 + 20, agents=["cy"]) == []
    assert q.stats(now=T0 + 20)["callbacks_due"] == 1
    got = q.claim(1, now=T0 + 20, agents=["cy", "ann"])
    assert [(x.number, x.agent) for x in got] == [(a.number, "ann")]
    with pytest.raises(ValueError, match="not an agent id"):
        q.claim(1, now=T0, agents=["a|b"])


def test_renewed_leases_outlive_their_first_deadline_and_others_expire(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(6))
    q = dc.CallQueue(redis_url, "c1")
    kept = q.claim(3, now=T0, lease_s=30)
    left = q.claim(3, now=T0, lease_s=30)
    assert {c.batch for c in kept} == {kept[0].token} and left[0].batch == left[0].token != kept[0].batch
    assert q.renew([kept[0].batch], now=T0 + 20, lease_s=30) == 1
    assert q.renew([kept[0].batch], now=T0 + 21, lease_s=5) == 0  # never shortened
    again = q.claim(6, now=T0 + 31)  # the batch not renewed expired; the renewed one holds
    assert sorted(c.number for c in again) == sorted(c.number for c in left)
    assert q.renew([kept[0].batch], now=T0 + 51, lease_s=30) == 0  # expired at T0 + 50: not revived
    assert sorted(c.number for c in q.claim(6, now=T0 + 51)) == sorted(c.number for c in kept)
    assert q.renew([], now=T0) == 0
    with pytest.raises(ValueError, match="lease"):
        q.renew([1], now=T0, lease_s=0)


def test_release_gives_a_contact_back_without_an_attempt(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(1))
    q = dc.CallQueue(redis_url, "c1")
    (c,) = q.claim(1, now=T0)
    assert q.complete([dc.Completion(c.number, c.token, "not_placed", release=True)], now=T0) == ["released"]
    (again,) = q.claim(1, now=T0)
    assert (again.number, again.attempts) == (c.number, 0)


def test_attributes_come_with_the_claim(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write("l.csv", "name,phone,segment\nAn,0901234567,basic\nBinh,0901234568,silver\n")
    dc.import_contacts(redis_url, p, "c1", country="VN")
    q = dc.CallQueue(redis_url, "c1")
    a, b = q.claim(2, now=T0, with_attrs=True)
    assert (a.number, a.attrs) == ("+84901234567", {"name": "An", "segment": "basic"})
    assert b.attrs == {"name": "Binh", "segment": "silver"}
    assert q.claim(1, now=T0) == []


@pytest.mark.parametrize("second_import", [False, True], ids=["first-import", "later-import"])
def test_attributes_follow_the_contact_through_every_transition(redis_url: str, write, second_import: bool) -> None:  # type: ignore[no-untyped-def]
    """Attributes are written once, at import (a page per batch, the contact's state points into
    it); retry, callback, do-not-call-back, release, lease expiry and the final outcome each keep
    them, for the claim, the contact's record and the listing. A later import into a campaign
    that already has contacts takes the script path (duplicate check in Redis): the same holds."""
    people = [("An", "0901234567", "basic"), ("Bình", "0901234568", "silver"), ("Cúc", "0901234569", "gold"),
              ("Dũng", "0901234570", "basic"), ("Em", "0901234571", "iron")]
    rows = "".join(f"{n},{ph},{sg}\n" for n, ph, sg in people)
    if second_import:
        first = write("first.csv", "name,phone,segment\nZed,0909999999,x\n")
        dc.import_contacts(redis_url, first, "c1", country="VN")
    rep = dc.import_contacts(redis_url, write("l.csv", "name,phone,segment\n" + rows + "Dup,0901234567,dup\n"), "c1", country="VN")
    assert (rep["accepted"], rep["duplicates"]) == (5, 1)
    want = {f"+84{ph[1:]}": {"name": n, "segment": sg} for n, ph, sg in people}
    q = dc.CallQueue(redis_url, "c1", max_attempts=3, retry_delay_s=10)
    skip = q.claim(1, now=T0) if second_import else []
    assert [c.number for c in skip] == (["+84909999999"] if second_import else [])
    got = q.claim(5, now=T0, with_attrs=True)
    assert {c.number: c.attrs for c in got} == want
    a, b, c, d, e = got
    assert q.complete([dc.Completion(a.number, a.token, "no_answer"),
                       dc.Completion(b.number, b.token, "later", callback_at=T0 + 10, agent="ann"),
                       dc.Completion(c.number, c.token, "refused", do_not_call_back_until=T0 + 10),
                       dc.Completion(d.number, d.token, "not_placed", release=True)], now=T0) == ["retry", "callback", "do_not_call_back", "released"]
    for x in (a, b, c, d, e):  # waiting, callback, do_not_call_back, waiting, claimed
        assert q.contact(x.number)["attrs"] == want[x.number]  # type: ignore[index]
    # e's lease expires: it comes back with the others, attributes and all.
    again = q.claim(5, now=T0 + 60, with_attrs=True)
    assert {x.number: x.attrs for x in again} == want
    assert q.complete([(x, "answered") for x in again], now=T0 + 61) == ["final"] * 5
    listed = q.contacts(state="done")["contacts"]
    assert {x["number"]: x["attrs"] for x in listed} == want
    assert q.contact(e.number)["attrs"] == want[e.number]  # type: ignore[index]


def test_partitions_split_a_campaign_and_each_is_claimed_apart(redis_url: str, tmp_path: Path) -> None:
    nums = numbers(1000)
    load(redis_url, tmp_path / "l.txt", "c4", nums, partitions=4)
    q = dc.CallQueue(redis_url, "c4")
    assert q.partitions == 4
    got: list[dc.Claim] = []
    for p in range(4):
        part = q.claim(1000, partition=p, now=T0)
        assert 150 < len(part) < 350 and {c.partition for c in part} == {p}
        got += part
    assert sorted(c.number for c in got) == sorted(nums)
    assert set(q.complete([(c, "answered") for c in got], now=T0)) == {"final"}
    with pytest.raises(dc.InvalidInput, match="partitions 0..4"):
        q.claim(1, partition=4)
    with pytest.raises(dc.InvalidInput, match="stored with 4 partition"):
        dc.CallQueue(redis_url, "c4", partitions=2)


def test_keys_of_a_partition_share_one_hash_tag(redis_url: str, tmp_path: Path, r: redis.Redis) -> None:
    load(redis_url, tmp_path / "l.txt", "c2", numbers(50), partitions=2)
    q = dc.CallQueue(redis_url, "c2")
    q.claim(10, partition=0, now=T0, lease_s=1)
    bases = [dc.partition_key("c2", p, partitions=2) for p in range(2)]
    keys = [k for k in r.scan_iter("*") if k.startswith("{c:c2:p")]
    assert keys and all(any(k.startswith(b) for b in bases) for k in keys), (bases, keys[:5])
    assert {b for b in bases if any(k.startswith(b) for k in keys)} == set(bases)


def test_bad_arguments_raise_clear_errors(redis_url: str) -> None:
    with pytest.raises(dc.InvalidInput, match="campaign id"):
        dc.CallQueue(redis_url, "bad id")
    with pytest.raises(dc.InvalidInput, match="max_attempts"):
        dc.CallQueue(redis_url, "c1", max_attempts=0)
    q = dc.CallQueue(redis_url, "c1")
    with pytest.raises(dc.InvalidNumber):
        q.complete([("0901234567", 1, "answered")])
    with pytest.raises(dc.InvalidInput, match="outcome"):
        q.complete([("+84901234567", 1, "No Answer")])
    with pytest.raises(dc.InvalidInput, match="agent"):
        dc.Completion("+84901234567", 1, "answered", callback_at=time.time())
    with pytest.raises(dc.InvalidInput, match="lease"):
        q.claim(1, lease_s=0)


def test_redis_down_is_a_connection_error() -> None:
    from tests.support.redis_server import free_port

    with pytest.raises(dc.RedisUnavailable) as e:
        dc.CallQueue(f"redis://127.0.0.1:{free_port()}", "c1")
    assert isinstance(e.value, ConnectionError)
    assert "unavailable" in str(e.value)


def test_opening_an_unknown_campaign_writes_nothing(redis_url: str, r: redis.Redis) -> None:
    q = dc.CallQueue(redis_url, "nobody")
    assert q.claim(10) == []
    assert q.stats()["exists"] is False
    assert r.dbsize() == 0


def test_the_same_claim_twice_in_one_completion_is_completed_once(redis_url: str, tmp_path: Path) -> None:
    load(redis_url, tmp_path / "l.txt", "c1", numbers(1))
    q = dc.CallQueue(redis_url, "c1", max_attempts=5)
    (c,) = q.claim(1, now=T0)
    assert q.complete([(c, "no_answer"), (c, "no_answer")], now=T0) == ["retry", "stale"]
    assert q.contact(c.number)["attempts"] == 1  # type: ignore[index]

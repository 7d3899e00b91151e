"""Dial marks: what a dead dialer's expired leases come back as (core-rs queue/mark.rs,
lua/claim.lua). Before, every expired lease went back to the queue with no attempt counted:
a call cut by the dialer's death was free, so with `max_attempts = 2` a subscriber could be
called three times, and one who had answered was called again."""

from __future__ import annotations

import dialer_core as dc
import pytest

T0 = 1_800_000_000.0


def queue(redis_url: str, write, cid: str = "i1", **policy) -> dc.CallQueue:  # type: ignore[no-untyped-def]
    path = write(f"{cid}.txt", "0901000001\n0901000002\n0901000003\n")
    assert dc.import_contacts(redis_url, path, cid, country="VN")["accepted"] == 3
    return dc.CallQueue(redis_url, cid, **policy)


def state(q: dc.CallQueue, number: str) -> tuple[str, int, str | None]:
    st = q.contact(number)
    assert st is not None
    return st["state"], st["attempts"], st["last_outcome"]


def test_expired_leases_count_by_how_far_the_call_got(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write, retry_delay_s=60.0)
    dialled, answered, idle = q.claim(3, lease_s=10, now=T0)
    assert q.mark([dialled, answered]) == 2           # their INVITEs leave
    assert q.mark([answered], answered=True) == 1     # then one answers
    # The dialer died: the leases expire. The one never dialled is back at once, uncounted.
    (back,) = q.claim(3, lease_s=100, now=T0 + 11)
    assert (back.number, back.attempts) == (idle.number, 0)
    found = sorted(q.take_interrupted())
    assert found == [("+84901000001", 0, 1, "retry"), ("+84901000002", 0, 1, "answered")]
    assert q.take_interrupted() == []
    assert state(q, "+84901000001") == ("waiting_retry", 1, "interrupted")  # an attempt, retried later
    assert state(q, "+84901000002") == ("done", 1, "answered")             # never called again
    assert q.claim(3, now=T0 + 12) == []  # the interrupted one is due after the retry delay, not at once
    later = q.claim(3, now=T0 + 11 + 61)
    assert [(c.number, c.attempts) for c in later] == [("+84901000001", 1)]
    counters = q.stats(now=T0 + 80)["counters"]
    assert counters["interrupted"] == 2 and counters["outcome:answered"] == 1


def test_an_interrupted_call_is_an_attempt_within_max_attempts(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write, max_attempts=1)
    (c, *_) = q.claim(1, lease_s=10, now=T0)
    q.mark([c])
    q.claim(1, now=T0 + 11)
    assert q.take_interrupted() == [(c.number, 0, 1, "exhausted")]
    assert state(q, c.number) == ("done", 1, "interrupted")


def test_not_retried_unless_the_policy_says_so(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write, retry_on=["no_answer", "busy"])
    (c, *_) = q.claim(1, lease_s=10, now=T0)
    q.mark([c])
    q.claim(1, now=T0 + 11)
    assert q.take_interrupted() == [(c.number, 0, 1, "interrupted")]
    assert state(q, c.number) == ("done", 1, "interrupted")


def test_a_mark_is_for_the_live_lease_only_and_goes_with_the_completion(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write, retry_delay_s=0.0)
    (c, *_) = q.claim(1, lease_s=10, now=T0)
    q.mark([c])
    assert q.complete([(c, "no_answer")], now=T0 + 1) == ["retry"]
    assert q.mark([c]) == 0  # completed: that lease is gone, nothing marked
    q.mark([c], answered=True)  # a late answer mark (not checked) names the old token: harmless
    (again, *_) = q.claim(1, lease_s=10, now=T0 + 2)
    assert again.number == c.number and again.attempts == 1
    # It expires unmarked (the old mark did not survive the completion): back, uncounted, and
    # due at once, so this very claim takes it again.
    (back,) = q.claim(1, now=T0 + 13)
    assert q.take_interrupted() == []
    assert (back.number, back.attempts) == (c.number, 1)


def test_an_answered_mark_is_never_turned_back(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write)
    (c, *_) = q.claim(1, lease_s=10, now=T0)
    q.mark([c], answered=True)
    assert q.mark([c]) == 0
    q.claim(1, now=T0 + 11)
    assert q.take_interrupted() == [(c.number, 0, 1, "answered")]


def test_a_dialling_claim_marks_its_contacts_in_the_same_script(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write, retry_delay_s=60.0)
    claims = q.claim(2, lease_s=10, now=T0, dialling=True)
    q.mark([claims[1]], answered=True)
    q.claim(1, lease_s=10, now=T0 + 11)
    assert sorted(q.take_interrupted()) == [(claims[0].number, 0, 1, "retry"), (claims[1].number, 0, 1, "answered")]


def test_marks_keep_who_dialled_and_the_answered_dialog(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write, retry_delay_s=60.0)
    a, b, c = q.claim(3, lease_s=10, now=T0, dialling=True, owner="inc-1")
    assert q.mark([b], answered=True, details=['inc-1|["call@h","x|y"]']) == 1
    assert q.marks() == [(a.number, a.token, "dialled", "inc-1"), (b.number, b.token, "answered", 'inc-1|["call@h","x|y"]'),
                         (c.number, c.token, "dialled", "inc-1")]
    # An answered mark with its detail is still an answered mark: never turned back, final.
    assert q.mark([b]) == 0
    q.complete([(c, "busy")], now=T0 + 1)
    assert [m[0] for m in q.marks()] == [a.number, b.number]  # a completion takes its mark
    q.claim(1, lease_s=10, now=T0 + 11)
    assert sorted(q.take_interrupted()) == [(a.number, 0, 1, "retry"), (b.number, 0, 1, "answered")]
    assert q.marks() == []


def test_an_owner_is_a_plain_name(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write)
    for bad in ("a|b", "x" * 65, "spa ce", "é"):
        with pytest.raises(dc.InvalidInput, match="owner"):
            q.claim(1, now=T0, dialling=True, owner=bad)
    assert q.stats(now=T0)["leased"] == 0  # refused before anything was claimed
    with pytest.raises(dc.InvalidInput, match="details"):
        q.mark(q.claim(1, now=T0), details=["x"])  # a dialled mark keeps no detail


def test_leases_of_a_dead_dialler_end_at_once_by_token(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    path = write("e.txt", "".join(f"09010000{i:02d}\n" for i in range(6)))
    assert dc.import_contacts(redis_url, path, "e1", country="VN")["accepted"] == 6
    q = dc.CallQueue(redis_url, "e1", retry_delay_s=60.0)
    first = q.claim(2, lease_s=100, now=T0, dialling=True, owner="dead")
    second = q.claim(2, lease_s=100, now=T0, dialling=True, owner="live")
    third = q.claim(2, lease_s=100, now=T0, dialling=True, owner="dead")
    # One token of the first batch and one of the third: both batches end, the second lives on.
    assert q.expire_leases([first[1].token, third[0].token]) == 2
    assert q.expire_leases([]) == 0
    assert q.claim(1, lease_s=100, now=T0 + 1) == []  # nothing fresh left; the expired are counted
    found = sorted(q.take_interrupted())
    assert found == sorted((c.number, 0, 1, "retry") for c in first + third)
    assert [m[0] for m in q.marks()] == [c.number for c in second]
    # Renewing an ended batch does not revive it.
    assert q.renew([first[0].batch], lease_s=100, now=T0 + 2) == 0
    assert q.renew([second[0].batch], lease_s=100, now=T0 + 2) == 1


def test_an_adopted_call_stays_leased_and_its_first_token_completes_it(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    """A dead dialer's call its agent still has open: the node taking over adopts it. The rest of
    the dead batch expires as usual; the adopted one is leased anew (renewed as its own batch)
    and the agent's disposition, which has the first token, completes it."""
    q = queue(redis_url, write, retry_delay_s=60.0, max_attempts=3)
    connected, ringing, idle = q.claim(3, lease_s=10, now=T0)
    q.mark([connected, ringing])
    q.mark([connected], answered=True, details=["deadnode|dialog"])
    (a,) = q.adopt([(connected.number, connected.token, "newnode")], lease_s=10, now=T0 + 5)
    assert a is not None and a.token > idle.token and a.batch == a.token and a.source == "adopted"
    assert (a.number, a.attempts) == (connected.number, 0)
    assert [m[:3] for m in q.marks()] == [(ringing.number, ringing.token, "dialled"), (a.number, a.token, "answered")]
    assert q.marks()[1][3] == "newnode"
    # Adopting it again with the dead token does nothing: that lease moved.
    assert q.adopt([(connected.number, connected.token, "other")], lease_s=10, now=T0 + 5) == [None]
    # The dead batch expires without the adopted call; the adopted one is renewed.
    assert q.renew([a.batch], lease_s=10, now=T0 + 9) == 1
    back = q.claim(3, lease_s=100, now=T0 + 11)
    assert [c.number for c in back] == [idle.number]
    assert q.take_interrupted() == [(ringing.number, 0, 1, "retry")]
    assert state(q, connected.number) == ("claimed", 0, None)
    # The disposition completes it with the token the agent's record has (the first one).
    assert q.complete([(connected.number, connected.token, "agreed")], now=T0 + 12) == ["final"]
    assert state(q, connected.number) == ("done", 1, "agreed")
    assert q.complete([(connected.number, connected.token, "agreed")], now=T0 + 13) == ["stale"]


def test_an_adopted_call_whose_new_node_dies_too_is_final_answered(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_url, write)
    (c, *_) = q.claim(1, lease_s=10, now=T0)
    q.mark([c], answered=True)
    (a,) = q.adopt([(c.number, c.token, "node2")], lease_s=10, now=T0 + 1)
    assert a is not None
    q.claim(1, now=T0 + 20)  # node2 died too: its lease runs out
    assert q.take_interrupted() == [(c.number, 0, 1, "answered")]
    assert state(q, c.number) == ("done", 1, "answered")
    assert q.complete([(c.number, c.token, "agreed")], now=T0 + 21) == ["stale"]  # nothing to complete
    assert q.adopt([(c.number, a.token, "node3")], now=T0 + 22) == [None]

"""Paging through a campaign's contacts, with a state filter."""

from __future__ import annotations

from pathlib import Path

import pytest

import dialer_core as dc

T0 = 1_800_000_000.0


def page_all(q: dc.CallQueue, **kw: object) -> list[dict]:  # type: ignore[type-arg]
    out: list[dict] = []  # type: ignore[type-arg]
    cursor = None
    while True:
        page = q.contacts(cursor=cursor, **kw)  # type: ignore[arg-type]
        out += page["contacts"]
        cursor = page["next"]
        if cursor is None:
            return out


@pytest.mark.parametrize("partitions", [1, 3])
def test_pages_cover_every_contact_once(redis_url: str, tmp_path: Path, partitions: int) -> None:
    nums = [f"+8490{i:07d}" for i in range(2_500)]
    (tmp_path / "l.txt").write_text("\n".join(nums) + "\n")
    dc.import_contacts(redis_url, tmp_path / "l.txt", "pg", country="VN", partitions=partitions)
    q = dc.CallQueue(redis_url, "pg")
    got = page_all(q, count=333)
    assert sorted(c["number"] for c in got) == sorted(nums)
    assert {c["state"] for c in got} == {"ready"}


def test_the_state_filter_and_the_fields(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write("l.csv", "phone,name\n" + "".join(f"090100000{i},N{i}\n" for i in range(1, 7)))
    dc.import_contacts(redis_url, p, "st", country="VN")
    q = dc.CallQueue(redis_url, "st", retry_delay_s=60)
    a, b, c = q.claim(3, now=T0)
    q.complete([(a, "answered"), (b, "no_answer")], now=T0)
    assert [x["number"] for x in page_all(q, state="done")] == [a.number]
    waiting = page_all(q, state="waiting_retry")
    assert [(x["number"], x["attempts"], x["last_outcome"]) for x in waiting] == [(b.number, 1, "no_answer")]
    claimed = page_all(q, state="claimed")
    assert [x["number"] for x in claimed] == [c.number]
    ready = page_all(q, state="ready", count=2)
    assert len(ready) == 3 and all(x["attrs"]["name"].startswith("N") for x in ready)


def test_bad_arguments_are_named(redis_url: str) -> None:
    q = dc.CallQueue(redis_url, "none")
    with pytest.raises(dc.InvalidInput, match="state"):
        q.contacts(state="sleeping")
    with pytest.raises(dc.InvalidInput, match="cursor"):
        q.contacts(cursor="garbage")
    with pytest.raises(dc.InvalidInput, match="count"):
        q.contacts(count=0)
    assert q.contacts() == {"contacts": [], "next": None}

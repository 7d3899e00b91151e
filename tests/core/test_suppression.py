"""Suppression lists: checked at import and at claim time."""

from __future__ import annotations

from pathlib import Path

import pytest

import dialer_core as dc

T0 = 1_800_000_000.0


def test_suppressed_number_is_never_claimed_even_when_listed_after_import(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    dnc = write("dnc.txt", "0901000001\n+84 90 100 0002\n")
    assert dc.load_suppression_list(redis_url, "dnc", dnc, country="VN")["total"] == 2
    contacts = write("c.txt", "".join(f"090100000{i}\n" for i in range(1, 10)))
    report = dc.import_contacts(redis_url, contacts, "c1", country="VN", suppression_lists=["dnc"])
    assert (report["accepted"], report["suppressed"]) == (7, 2)

    late = write("late.txt", "0901000003\n0901000004\n")
    assert dc.load_suppression_list(redis_url, "dnc", late, country="VN", mode="append")["total"] == 4
    q = dc.CallQueue(redis_url, "c1")
    assert q.suppression_lists() == ["dnc"]
    got = [c.number for c in q.claim(100, now=T0)]
    assert got == [f"+8490100000{i}" for i in range(5, 10)]
    assert q.stats(now=T0)["counters"]["suppressed"] == 2
    st = q.contact("+84901000003")
    assert st is not None and (st["state"], st["last_outcome"], st["attempts"]) == ("done", "suppressed", 0)


def test_replace_switches_the_list_atomically_and_drops_the_old_content(redis_url: str, write, r) -> None:  # type: ignore[no-untyped-def]
    dc.load_suppression_list(redis_url, "vip", write("a.txt", "0901000001\n0901000002\n"), country="VN")
    rep = dc.load_suppression_list(redis_url, "vip", write("b.txt", "0901000003\n"), country="VN")
    assert rep["total"] == 1
    assert dc.suppression_lists(redis_url) == [{"name": "vip", "count": 1, "generation": 2}]
    assert not [k for k in r.scan_iter("{s:vip}:g1:*")]
    assert dc.delete_suppression_list(redis_url, "vip") is True
    assert dc.delete_suppression_list(redis_url, "vip") is False
    assert dc.suppression_lists(redis_url) == []


def test_a_failed_replace_leaves_the_list_as_it_was(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    dc.load_suppression_list(redis_url, "vip", write("a.txt", "0901000001\n"), country="VN")
    binary = write("b.txt", "0901000003\n")
    binary.write_bytes(b"0901000003\n\x00\x01")
    with pytest.raises(dc.MalformedFile):
        dc.load_suppression_list(redis_url, "vip", binary, country="VN")
    assert dc.suppression_lists(redis_url)[0]["count"] == 1


def test_importing_with_an_unknown_list_is_refused_before_loading(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(dc.InvalidInput, match="nope not found"):
        dc.import_contacts(redis_url, write("c.txt", "0901000001\n"), "c1", country="VN", suppression_lists=["nope"])
    assert dc.CallQueue(redis_url, "c1").stats()["exists"] is False  # not even the campaign


def test_lists_are_stored_compactly(redis_url: str, tmp_path: Path, r) -> None:  # type: ignore[no-untyped-def]
    """Past the fixed cost of the 65,536 bucket keys, a number costs about 8 bytes (an intset entry)."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("".join(f"+8490{i:07d}\n" for i in range(300_000)))
    b.write_text("".join(f"+8491{i:07d}\n" for i in range(300_000)))
    dc.load_suppression_list(redis_url, "big", a, country="VN")
    before = int(r.info("memory")["used_memory"])
    assert dc.load_suppression_list(redis_url, "big", b, country="VN", mode="append")["total"] == 600_000
    per = (int(r.info("memory")["used_memory"]) - before) / 300_000
    assert per < 12, f"{per:.1f} bytes a number"


def _sismembers(r) -> int:  # type: ignore[no-untyped-def]
    return int(r.info("commandstats").get("cmdstat_sismember", {}).get("calls", 0))


def test_claims_skip_the_list_check_until_a_list_changes(redis_url: str, write, r) -> None:  # type: ignore[no-untyped-def]
    dc.load_suppression_list(redis_url, "dnc", write("dnc.txt", "0901000001\n"), country="VN")
    dc.import_contacts(redis_url, write("c.txt", "".join(f"090100000{i}\n" for i in range(2, 10))), "c1", country="VN", suppression_lists=["dnc"])
    q = dc.CallQueue(redis_url, "c1")
    r.config_resetstat()
    assert len(q.claim(2, now=T0)) == 2
    assert _sismembers(r) == 0  # every contact was checked at import against this very list
    dc.load_suppression_list(redis_url, "dnc", write("more.txt", "0901000005\n"), country="VN", mode="replace")
    got = [c.number for c in q.claim(10, now=T0)]
    assert _sismembers(r) > 0 and "+84901000005" not in got and len(got) == 5


def test_a_list_attached_after_the_import_is_checked_at_claim(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    dc.import_contacts(redis_url, write("c.txt", "0901000001\n0901000002\n"), "c1", country="VN")
    dc.load_suppression_list(redis_url, "vip", write("vip.txt", "0901000001\n"), country="VN")
    q = dc.CallQueue(redis_url, "c1")
    q.set_suppression_lists(["vip"])
    assert [c.number for c in q.claim(10, now=T0)] == ["+84901000002"]


def test_a_second_import_naming_a_new_list_covers_the_contacts_already_queued(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    dc.import_contacts(redis_url, write("a.txt", "0901000001\n"), "c1", country="VN")
    dc.load_suppression_list(redis_url, "vip", write("vip.txt", "0901000001\n"), country="VN")
    dc.import_contacts(redis_url, write("b.txt", "0901000002\n"), "c1", country="VN", suppression_lists=["vip"])
    assert [c.number for c in dc.CallQueue(redis_url, "c1").claim(10, now=T0)] == ["+84901000002"]

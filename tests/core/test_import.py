"""Contacts import: the report, bad input, Redis down or full."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

import dialer_core as dc


def test_report_counts_every_line(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write(
        "list.csv",
        "phone,name,segment\n"
        "0901234567,An,basic\n"        # accepted
        "84901234567,An,basic\n"       # the same number: duplicate
        "+84 90 123 4568,Binh,VIP\n"   # excluded
        "12,Chi,basic\n"               # rejected
        "0901234569,Dung,Gold\n"       # excluded (case-insensitive)
        "0901234570,Em\n"              # rejected: a field short
        "0901234571,Giang,silver\n",   # accepted
    )
    rep = dc.import_contacts(redis_url, p, "c1", country="VN", exclusions=["segment in {VIP, GOLD, DIAMOND}"])
    assert {k: rep[k] for k in ("read", "accepted", "rejected", "duplicates", "suppressed", "excluded")} == {
        "read": 7, "accepted": 2, "rejected": 2, "duplicates": 1, "suppressed": 0, "excluded": 2,
    }
    assert [(x["line"], x["value"]) for x in rep["rejections"]] == [(5, "12"), (7, "")]
    assert "expected 3 fields" in rep["rejections"][1]["reason"]


def test_importing_again_loads_nothing_twice(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write("l.txt", "0901234567\n0901234568\n")
    assert dc.import_contacts(redis_url, p, "c1", country="VN")["accepted"] == 2
    again = dc.import_contacts(redis_url, p, "c1", country="VN")
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert dc.CallQueue(redis_url, "c1").stats()["ready"] == 2


def test_only_the_first_100_reasons_are_kept(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write("l.txt", "".join("123\n" for _ in range(250)))
    rep = dc.import_contacts(redis_url, p, "c1", country="VN")
    assert (rep["rejected"], len(rep["rejections"])) == (250, 100)
    assert rep["rejections"][99]["line"] == 100


def test_dry_run_parses_without_loading(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write("l.txt", "0901234567\nabc\n")
    rep = dc.parse_contacts(p, country="VN")
    assert (rep["read"], rep["accepted"], rep["rejected"]) == (2, 1, 1)
    assert dc.CallQueue(redis_url, "c1").stats()["counters"] == {}


@pytest.mark.parametrize(
    ("content", "kwargs", "error", "match"),
    [
        ("name,segment\nAn,VIP\n", {}, dc.MissingColumn, "name, segment"),
        ("phone\n0901234567\n", {"number_column": "msisdn"}, dc.MissingColumn, "msisdn"),
        ("phone\n0901234567\n", {"country": "XX"}, dc.UnknownCountry, "XX"),
        ("phone\n0901234567\n", {"exclusions": ["tier in {a}"]}, dc.MissingColumn, "tier"),
        ("phone\n0901234567\n", {"exclusions": ["segment ~ VIP"]}, dc.BadRule, "segment ~ VIP"),
        ("0901234567\n", {"exclusions": ["segment in {VIP}"]}, dc.BadRule, "no columns"),
        ("", {}, dc.MalformedFile, "empty"),
        ("phone\n\x00\x00garbage", {}, dc.MalformedFile, "binary"),
    ],
)
def test_bad_input_is_refused_before_anything_is_loaded(redis_url: str, write, content, kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    p = write("bad.csv", content)
    kwargs = {"country": "VN", **kwargs}
    with pytest.raises(error, match=match) as e:
        dc.import_contacts(redis_url, p, "c1", **kwargs)
    assert isinstance(e.value, ValueError)
    assert dc.CallQueue(redis_url, "c1").stats()["ready"] == 0


def test_a_missing_file_is_an_oserror(redis_url: str, tmp_path: Path) -> None:
    with pytest.raises(dc.ContactsFileError, match="nope.csv") as e:
        dc.import_contacts(redis_url, tmp_path / "nope.csv", "c1", country="VN")
    assert isinstance(e.value, OSError)


def test_redis_down_is_reported_and_nothing_is_half_loaded(write) -> None:  # type: ignore[no-untyped-def]
    from tests.support.redis_server import free_port

    p = write("l.txt", "0901234567\n")
    with pytest.raises(dc.RedisUnavailable, match="unavailable"):
        dc.import_contacts(f"redis://127.0.0.1:{free_port()}", p, "c1", country="VN")


def test_redis_full_stops_the_import_and_reports_what_was_loaded(redis_url: str, tmp_path: Path, r: redis.Redis) -> None:
    p = tmp_path / "big.txt"
    p.write_text("".join(f"+8490{i:07d}\n" for i in range(300_000)))
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", used + 2_000_000)
    r.config_set("maxmemory-policy", "noeviction")
    try:
        with pytest.raises(dc.ImportInterrupted) as e:
            dc.import_contacts(redis_url, p, "full", country="VN", batch_size=5000)
    finally:
        r.config_set("maxmemory", 0)
    assert isinstance(e.value.__cause__, dc.RedisFull)
    loaded = e.value.report["accepted"]
    assert 0 < loaded < 300_000
    assert dc.CallQueue(redis_url, "full").stats()["ready"] == loaded  # all that was loaded is reported
    # Running it again completes the import.
    again = dc.import_contacts(redis_url, p, "full", country="VN")
    assert (again["accepted"], again["duplicates"]) == (300_000 - loaded, loaded)


def test_normalize_gives_e164_or_says_why() -> None:
    assert dc.normalize("0901234567", "VN") == dc.normalize("84901234567", "vn") == "+84901234567"
    with pytest.raises(dc.InvalidNumber, match="12"):
        dc.normalize("12", "VN")
    with pytest.raises(dc.UnknownCountry):
        dc.normalize("0901234567", "ZZ")


def test_numbers_only_import_keeps_no_attributes(redis_url: str, write) -> None:  # type: ignore[no-untyped-def]
    p = write("l.csv", "phone,name\n0901234567,An\n")
    dc.import_contacts(redis_url, p, "c1", country="VN", attributes=False)
    q = dc.CallQueue(redis_url, "c1")
    (c,) = q.claim(1, with_attrs=True)
    assert c.attrs == {}

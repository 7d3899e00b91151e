"""Exclusion rules fold case the same way on both sides. Before, a rule's values were lower-cased
with Unicode rules but each field only by ASCII, so `segment in {KHÁCH VIP}` matched no field
written `KHÁCH VIP` or `khách vip`: those VIPs were imported and dialled. Now both sides are
Unicode lower case in NFC, so decomposed accents (`A` + U+0301, as some keyboards write it)
match too. Through the real import: the campaign's rules from the API, a CSV upload."""

from __future__ import annotations

import unicodedata
import httpx

from tests.api.conftest import SEED
from tests.api.test_campaigns import create


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


def test_vip_segments_in_vietnamese_and_portuguese_are_excluded(admin: httpx.Client) -> None:
    create(admin, {**SEED, "exclusions": ["segment in {KHÁCH VIP, \"São Paulo\"}", "HẠNG = vàng"]}, id="vi1")
    rows = [
        ("0901000001", "KHÁCH VIP", "bạc"),       # excluded: as the rule writes it
        ("0901000002", "khách vip", "bạc"),       # excluded: lower case
        ("0901000003", nfd("Khách VIP"), "bạc"),  # excluded: decomposed accents
        ("0901000004", "SÃO PAULO", "bạc"),       # excluded
        ("0901000005", "thường", "VÀNG"),         # excluded by the second rule (its column in lower case)
        ("0901000006", "KHACH VIP", "bạc"),       # kept: no accent is another word
        ("0901000007", "thường", "bạc"),          # kept
    ]
    body = ("phone,name,segment,hạng\n" + "".join(f"{n},N,{s},{h}\n" for n, s, h in rows)).encode()
    r = admin.post("/v1/campaigns/vi1/contacts", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["read"], rep["accepted"], rep["excluded"]) == (7, 2, 5), rep
    page = admin.get("/v1/campaigns/vi1/contacts").json()
    assert sorted(x["number"] for x in page["contacts"]) == ["+84901000006", "+84901000007"]

"""Contacts, suppression lists, stats, results.csv and /metrics over real HTTP."""

from __future__ import annotations

import csv
import io
from typing import Any

import dialer_core
import httpx

from tests.api.conftest import read_events
from tests.api.test_campaigns import create


def upload(c: httpx.Client, cid: str, body: bytes, **params: str) -> httpx.Response:
    return c.post(f"/v1/campaigns/{cid}/contacts", content=body, params=params, headers={"Content-Type": "text/csv"})


def test_import_with_the_campaigns_rules_and_bad_rows(admin: httpx.Client, seed_spec: dict[str, Any], contacts_csv: Any) -> None:
    r = admin.put("/v1/suppression-lists/dnc", params={"country": "VN"}, content=b"0901000002\n+84901000003\n")
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 2
    create(admin, {**seed_spec, "suppression_lists": ["dnc"]}, id="c1")
    body = contacts_csv([
        ("0901000001", "An", "SILVER"),
        ("0901000002", "Binh", "SILVER"),    # on dnc
        ("84901000003", "Chi", "BRONZE"),    # on dnc, other form
        ("0901000004", "Dung", "VIP"),       # excluded
        ("not-a-number", "Em", "SILVER"),    # rejected
        ("0901000001", "An again", "SILVER"),  # duplicate
        ("0901000005", "Giang", "GOLD"),     # excluded
        ("0901000006", "Hoa", "BRONZE"),
    ])
    r = upload(admin, "c1", body)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["read"], rep["accepted"], rep["rejected"], rep["duplicates"], rep["suppressed"], rep["excluded"]) == (8, 2, 1, 1, 2, 2)
    assert rep["rejections"][0]["line"] == 6 and rep["rejections"][0]["value"] == "not-a-number"
    # Again: nothing new.
    assert upload(admin, "c1", body).json()["accepted"] == 0
    page = admin.get("/v1/campaigns/c1/contacts").json()
    assert sorted(x["number"] for x in page["contacts"]) == ["+84901000001", "+84901000006"]
    assert page["next"] is None
    assert all(x["state"] == "ready" and x["attempts"] == 0 for x in page["contacts"])
    assert {x["attrs"]["name"] for x in page["contacts"]} == {"An", "Hoa"}
    events = [e for _, e, _ in read_events(admin, "c1", 3)]
    assert events[0] == "created" and "imported" in events


def test_bad_files_and_unknowns(admin: httpx.Client, seed_spec: dict[str, Any]) -> None:
    create(admin, seed_spec, id="c1")
    r = upload(admin, "c1", b"name,segment\nAn,SILVER\n")
    assert r.status_code == 422 and "column" in r.text
    r = upload(admin, "c1", b"phone,name\n0901000001,An\n", number_column="msisdn")
    assert r.status_code == 422 and "msisdn" in r.text
    # The campaign excludes by segment: a file without that column cannot be checked, so it is refused.
    r = upload(admin, "c1", b"0901000001\n")
    assert r.status_code == 422 and "segment" in r.text and "/tmp" not in r.text
    assert upload(admin, "nope", b"0901000001\n").status_code == 404
    r = admin.put("/v1/suppression-lists/dnc", params={"country": "XX"}, content=b"0901000001\n")
    assert r.status_code == 422 and "country" in r.text
    assert admin.put("/v1/suppression-lists/bad name", params={"country": "VN"}, content=b"1").status_code == 422
    assert admin.get("/v1/campaigns/c1/contacts", params={"limit": 0}).status_code == 422
    assert admin.get("/v1/campaigns/c1/contacts", params={"state": "sleeping"}).status_code == 422
    assert admin.get("/v1/suppression-lists/none").status_code == 404
    admin.post("/v1/campaigns/c1/approve")
    admin.post("/v1/campaigns/c1/stop")
    r = upload(admin, "c1", b"phone,segment\n0901000001,SILVER\n")
    assert r.status_code == 409 and r.json()["state"] == "stopped"


def test_suppression_lists_replace_append_and_late_additions(admin: httpx.Client, client: Any, seed_spec: dict[str, Any], redis_url: str) -> None:
    assert admin.put("/v1/suppression-lists/vip", params={"country": "VN"}, content=b"0901000009\n").json()["total"] == 1
    r = admin.put("/v1/suppression-lists/vip", params={"country": "VN", "mode": "append"}, content=b"phone\n0901000008\n")
    assert r.json()["total"] == 2
    r = admin.put("/v1/suppression-lists/vip", params={"country": "VN"}, content=b"0901000007\n")
    assert r.json()["total"] == 1
    info = admin.get("/v1/suppression-lists/vip").json()
    assert info["name"] == "vip" and info["count"] == 1
    assert [x["name"] for x in admin.get("/v1/suppression-lists").json()] == ["vip"]
    # A list named by the campaign after the import is honoured at claim time.
    create(admin, seed_spec, id="c1")
    assert upload(admin, "c1", b"phone,segment\n0901000001,SILVER\n0901000002,SILVER\n").json()["accepted"] == 2
    admin.put("/v1/suppression-lists/late", params={"country": "VN"}, content=b"0901000002\n")
    assert admin.patch("/v1/campaigns/c1", json={"suppression_lists": ["late"]}).status_code == 200
    q = dialer_core.CallQueue(redis_url, "c1")
    assert q.suppression_lists() == ["late"]
    claimed = [c.number for c in q.claim(10)]
    assert claimed == ["+84901000001"]
    sup = client("supervisor")
    assert sup.delete("/v1/suppression-lists/vip").status_code == 403
    assert admin.delete("/v1/suppression-lists/vip").status_code == 204
    assert admin.delete("/v1/suppression-lists/vip").status_code == 404


def test_stats_results_and_metrics_match_the_queue(admin: httpx.Client, seed_spec: dict[str, Any], redis_url: str) -> None:
    create(admin, seed_spec, id="c1")
    numbers = [f"09010000{i:02d}" for i in range(10)]
    body = ("phone,name,segment\n" + "".join(f"{n},N{i},SILVER\n" for i, n in enumerate(numbers))).encode()
    assert upload(admin, "c1", body).json()["accepted"] == 10
    q = dialer_core.CallQueue(redis_url, "c1", max_attempts=2)
    claims = q.claim(6)
    outcomes = ["answered", "answered", "no_answer", "busy", "rejected", "answered"]
    q.complete([(c, o) for c, o in zip(claims, outcomes)])
    s = admin.get("/v1/campaigns/c1/stats").json()
    assert s["attempted"] == 6 and s["queue"]["ready"] == 4 and s["queue"]["retry_waiting"] == 2
    assert s["outcomes"] == {"answered": 3, "rejected": 1}
    assert s["completed"]["retry"] == 2 and s["live"] is None and s["state"] == "pending_approval"
    r = admin.get("/v1/campaigns/c1/results.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 10
    by_number = {row["number"]: row for row in rows}
    for c, o in zip(claims, outcomes):
        row = by_number[c.number]
        expect = dict(q.contact(c.number) or {})
        assert row["state"] == expect["state"] and row["last_outcome"] == o and int(row["attempts"]) == 1
    assert sum(1 for row in rows if row["state"] == "ready") == 4
    assert {row["name"] for row in rows} == {f"N{i}" for i in range(10)}
    assert httpx.get(str(admin.base_url) + "/metrics").status_code == 401  # campaign ids and volumes: a token
    m = admin.get("/metrics")
    assert m.status_code == 200
    text = m.text
    assert 'dialer_calls_total{campaign="c1",outcome="answered"} 3' in text
    assert 'dialer_queue_depth{campaign="c1",state="ready"} 4' in text
    assert 'dialer_campaigns{state="pending_approval"} 1' in text
    assert 'dialer_api_request_duration_seconds_count{method="GET",route="/v1/campaigns/{cid}/stats",status="200"}' in text

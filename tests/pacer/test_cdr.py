"""The CDR archive against a real Redis and a real SQLite file: records arrive once each, survive
a recorder killed with SIGKILL mid-stream, and the stream is trimmed behind them."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import redis as sync_redis

from api.auth import create_token
from pacer.cdr import ARCHIVES, STREAM, Archive, CallRecord, Recorder, archive_id, group_of, lease_of, open_db
from store import Store
from tests.support.api_server import api_server


def rows(db: Path) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT id, number, outcome, attempt FROM cdr ORDER BY id").fetchall()


def test_records_reach_sqlite_once_with_their_fields(redis_url: str, tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"

    async def scenario() -> list[str]:
        store = Store(redis_url)
        # The recorder first: another test's server may be recording (and trimming) this stream.
        stop = asyncio.Event()
        rec = Recorder(redis_url, db, block_ms=50)
        task = asyncio.create_task(rec.run(stop))
        while not rec.holding:
            await asyncio.sleep(0.01)
        ids = await store.cdr.append(*[
            CallRecord(campaign="c1", number=f"+8490100000{i}", outcome="answered" if i % 2 else "busy", attempt=1,
                       call_id=f"c1:0:{i}", dialled_at=1000.0 + i, answered_at=1008.0 + i if i % 2 else None,
                       ended_at=1030.0 + i, sip_code=200 if i % 2 else 486, dtmf="1" if i == 1 else "")
            for i in range(5)
        ])
        await store.cdr.append(CallRecord(campaign="c1", number="+84901000001", kind="sms", outcome="sms", sms_status="delivered"))
        while rec.recorded < 6:
            await asyncio.sleep(0.02)
        # Recording the same entries again (a recorder died between commit and XACK) stores nothing new.
        stop.set()
        await task
        await store.close()
        return ids

    ids = asyncio.run(scenario())
    got = rows(db)
    assert [g[0] for g in got][:5] == ids and len(got) == 6
    a = Archive(db)
    calls = a.calls("c1", "+84901000001")
    assert [c["kind"] for c in calls] == ["call", "sms"]
    assert calls[0]["sip_code"] == 200 and calls[0]["dtmf"] == "1" and calls[0]["answered_at"] == 1009.0
    latest = a.latest("c1", ["+84901000001", "+84901000000", "+84999999999"])
    assert latest["+84901000001"] == {"calls": 1, "sip_code": 200, "dtmf": "1", "sms_status": "delivered"}
    assert latest["+84901000000"]["sip_code"] == 486 and "+84999999999" not in latest
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    conn = open_db(db)
    aid = archive_id(conn)
    assert r.xpending(STREAM, group_of(aid))["pending"] == 0
    assert r.get(lease_of(aid)) is None  # given up on stop
    from pacer.cdr import write_batch

    entries = [(e[0], e[1]) for e in r.xrange(STREAM)]
    assert write_batch(conn, entries) == 0  # already there: nothing doubled
    conn.close()
    r.close()


@pytest.mark.slow
def test_sigkill_mid_stream_loses_and_doubles_nothing(redis_url: str, tmp_path: Path) -> None:
    """A `dialer serve` recording while 20,000 records pour in is killed with SIGKILL; a second one
    takes the lease over when it expires and the dead one's unacknowledged entries with it."""
    db = tmp_path / "cdr.sqlite3"
    total = 20_000
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    create_token(redis_url, "admin")

    def pour(start: int, n: int) -> None:
        pipe = r.pipeline(transaction=False)
        for i in range(start, start + n):
            pipe.xadd(STREAM, {"r": CallRecord(campaign="k", number=f"+849{i:08d}", outcome="answered", attempt=1).to_json()})
        pipe.execute()

    def recording() -> None:  # its archive registered: the stream is not trimmed past it
        deadline = time.monotonic() + 10
        while not any(str(db) in v for v in r.hvals(ARCHIVES)) and time.monotonic() < deadline:
            time.sleep(0.01)

    with api_server(redis_url, tmp_path / "a", extra=["--cdr-db", str(db)]) as first:
        recording()
        for start in range(0, total // 2, 1000):
            pour(start, 1000)
        deadline = time.monotonic() + 30
        while (not db.exists() or len(rows(db)) < 2000) and time.monotonic() < deadline:
            time.sleep(0.01)
        first.stop(signal.SIGKILL)
    recorded_by_first = len(rows(db))
    assert 0 < recorded_by_first <= total // 2
    pour(total // 2, total // 2)
    with api_server(redis_url, tmp_path / "b", extra=["--cdr-db", str(db)]) as second:
        deadline = time.monotonic() + 40  # the dead one's lease lasts 10 s
        while len(rows(db)) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        second.stop()
    got = rows(db)
    assert len(got) == total and len({g[1] for g in got}) == total
    with sqlite3.connect(db) as c:
        aid = c.execute("SELECT value FROM meta WHERE key = 'archive_id'").fetchone()[0]
    assert r.xpending(STREAM, group_of(aid))["pending"] == 0
    assert r.xlen(STREAM) < total  # trimmed behind the acknowledged
    r.close()

"""The CDR recorder: records/s from the Redis stream into SQLite (committed and acknowledged),
beside a reference on the same machine in the same run: the same rows inserted straight into
SQLite in the same batches (no Redis, no stream), the floor any recorder design pays.

A million-call day is 12 records/s on average and a few hundred a second at the peak of a
calling window; the recorder should keep up with far more.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis as sync_redis

from bench.conftest import report
from pacer.cdr import STREAM, CallRecord, Recorder, open_db, write_batch
from tests.support.redis_server import redis_server


def _records(n: int) -> list[CallRecord]:
    return [CallRecord(campaign="bench", number=f"+849{i:08d}", outcome="answered" if i % 3 else "no_answer", attempt=1 + i % 2,
                       call_id=f"bench:0:{i}", dialled_at=1.7e9 + i, answered_at=1.7e9 + i + 8, ended_at=1.7e9 + i + 40,
                       sip_code=200 if i % 3 else 480, dtmf="1" if i % 5 == 0 else "") for i in range(n)]


def test_recorder_throughput(tmp_path: Path, full_size: bool) -> None:
    n = 200_000 if full_size else 20_000
    records = _records(n)
    with redis_server(tmp_path / "redis") as server:
        r = sync_redis.Redis.from_url(server.url)
        for i in range(0, n, 5000):
            pipe = r.pipeline(transaction=False)
            for rec in records[i:i + 5000]:
                pipe.xadd(STREAM, {"r": rec.to_json()})
            pipe.execute()
        entries = [(k.decode(), {f.decode(): v.decode() for f, v in d.items()}) for k, d in r.xrange(STREAM)]

        async def drain() -> float:
            rec = Recorder(server.url, tmp_path / "cdr.sqlite3", block_ms=20)
            stop = asyncio.Event()
            t0 = time.perf_counter()
            task = asyncio.create_task(rec.run(stop))
            while rec.recorded < n:
                await asyncio.sleep(0.01)
            took = time.perf_counter() - t0
            stop.set()
            await task
            return took

        ours = asyncio.run(drain())
        r.close()
    db = open_db(tmp_path / "ref.sqlite3")
    t0 = time.perf_counter()
    for i in range(0, n, 2000):
        write_batch(db, entries[i:i + 2000])
    ref = time.perf_counter() - t0
    db.close()
    report("CDR recorder (Redis stream -> SQLite, WAL, synchronous=FULL)", [
        ("records", f"{n:,}"),
        ("recorder: read, commit, acknowledge", f"{n / ours:,.0f} records/s"),
        ("reference: the same batches straight into SQLite", f"{n / ref:,.0f} records/s"),
        ("ratio", f"{ref / ours:.2f} of the reference's speed" if ours else "-"),
    ])
    assert ours > 0

"""Listing a campaign's contacts by state (the customer-list tab, exports) against reading the
same bucket hashes with redis-py in the same windows: what the listing cannot do without.

A filter on a state nobody is in reads the whole campaign. Before the listing looked leases up by
number in a hash map, it searched a list of every open contact of the window for each contact
(quadratic in the window: about 8,000 open contacts a window for a million contacts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dialer_core as dc
import redis

from bench.conftest import report

WINDOW = 1024
BUCKETS = 131_072


def test_listing_a_rare_state_reads_the_campaign_once(benchmark: Any, redis_url: str, tmp_path: Path, full_size: bool) -> None:
    contacts = 1_000_000 if full_size else 100_000
    p = tmp_path / "numbers.txt"
    p.write_text("".join(f"+8490{i:07d}\n" for i in range(contacts)))
    assert dc.import_contacts(redis_url, p, "ls", country="VN")["accepted"] == contacts
    q = dc.CallQueue(redis_url, "ls")

    def scan() -> float:
        t = time.perf_counter()
        page = q.contacts(state="done", count=100)  # nobody is done: every bucket is read
        took = time.perf_counter() - t
        assert page == {"contacts": [], "next": None}
        return took

    benchmark.pedantic(scan, rounds=1, iterations=1)
    ours = min(scan() for _ in range(3))
    r = redis.Redis.from_url(redis_url)
    base = dc.partition_key("ls", 0, partitions=q.partitions)

    def raw() -> float:
        t = time.perf_counter()
        n = 0
        for start in range(0, BUCKETS, WINDOW):
            pipe = r.pipeline(transaction=False)
            for i in range(start, start + WINDOW):
                pipe.hgetall(f"{base}:k:{i}")
            n += sum(len(h) for h in pipe.execute())
        assert n == contacts
        return time.perf_counter() - t

    ref = min(raw() for _ in range(3))
    first = time.perf_counter()
    assert len(q.contacts(count=100)["contacts"]) == 100
    first = time.perf_counter() - first
    r.close()
    benchmark.extra_info.update(scan_s=ours, reference_s=ref, ratio=ours / ref)
    report(f"contact listing filtered on a state nobody is in, {contacts:,} contacts (best of 3)", [
        ("dialer_core CallQueue.contacts(state='done'), s", f"{ours:.3f}"),
        ("redis-py HGETALL of every bucket, windows of 1024, s", f"{ref:.3f}"),
        ("ratio ours / reference (1 = only the reads)", f"{ours / ref:.2f}"),
        ("first page unfiltered (100 contacts), ms", f"{first * 1000:.1f}"),
    ])

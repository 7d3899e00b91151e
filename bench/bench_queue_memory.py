"""Redis memory per queued contact (number only) with 1M contacts loaded, from INFO memory.

Reference, same run, same server: the obvious layout, one Redis hash per contact
(`HSET contact:<number> state ready attempts 0`), measured on 100k contacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

import dialer_core as dc
from bench.conftest import report

CONTACTS = 1_000_000
REFERENCE = 100_000


def _used(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def test_memory_per_queued_contact(benchmark: Any, redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    p = tmp_path / "numbers.txt"
    p.write_text("".join(f"+8490{i:07d}\n" for i in range(CONTACTS)))
    before = _used(r)

    def load() -> dc.ImportReport:
        return dc.import_contacts(redis_url, p, "mem", country="VN", batch_size=20_000)

    rep = benchmark.pedantic(load, rounds=1, iterations=1)
    assert rep["accepted"] == CONTACTS
    ours = (_used(r) - before) / CONTACTS

    before = _used(r)
    pipe = r.pipeline(transaction=False)
    for i in range(REFERENCE):
        pipe.hset(f"contact:+8491{i:07d}", mapping={"state": "ready", "attempts": 0})
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    naive = (_used(r) - before) / REFERENCE
    benchmark.extra_info.update(bytes_per_contact=ours, reference_bytes_per_contact=naive, correct=rep["accepted"] == CONTACTS)
    report("queue memory (INFO used_memory)", [
        ("dialer_core, 1M contacts, bytes each", f"{ours:.1f}"),
        ("one hash per contact (reference), bytes each", f"{naive:.1f}"),
        ("ratio ours / reference", f"{ours / naive:.2f}"),
    ])
    assert ours <= 64, f"{ours:.1f} bytes a contact (target: at most 64)"

"""Import: a generated CSV (12M rows under `make bench`) parsed and normalised, then loaded into
Redis, each in its own process so that its peak RSS is its own.

Targets (issue 2): parse+normalise >= 1M rows/s, load >= 300k rows/s, peak RSS < 500 MB.
References, same run, same file: Python's `csv` module only reading the rows (no normalisation),
redis-py pipelining plain RPUSHes of the same count of numbers, and `redis-benchmark -t hset -P 100`
on the same server: a load costs Redis one HSET a row (the contact's state) plus its share of the
batch's RPUSH, so that rate is the ceiling a load can approach on this machine.
"""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

import dialer_core as dc
from api.embedded_redis import EmbeddedRedis
from bench.conftest import redis_benchmark, report

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
import dialer_core as dc
mode, url, path = sys.argv[1:4]
t = time.perf_counter()
if mode == "parse":
    rep = dc.parse_contacts(path, country="VN", exclusions=["segment in {VIP, GOLD, DIAMOND}"])
elif mode == "numbers":
    rep = dc.import_contacts(url, path, "imp-numbers", country="VN", attributes=False)
else:
    rep = dc.import_contacts(url, path, "imp", country="VN", exclusions=["segment in {VIP, GOLD, DIAMOND}"])
took = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"report": rep, "seconds": took, "peak_rss": rss}))
"""


def child(mode: str, url: str, path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, url, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=900, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def test_import_speed_and_memory(benchmark: Any, redis_instance: EmbeddedRedis, redis_url: str, r: redis.Redis, tmp_path: Path, full_size: bool) -> None:
    rows = 12_000_000 if full_size else 200_000
    path = tmp_path / "list.csv"
    sample = dc.generate_sample(path, rows, seed=3)
    parsed = child("parse", redis_url, path)
    cpu0 = redis_cpu(r)
    loaded: dict[str, Any] = benchmark.pedantic(lambda: child("import", redis_url, path), rounds=1, iterations=1)
    redis_us_per_row = (redis_cpu(r) - cpu0) / rows * 1e6
    rep = loaded["report"]
    assert rep["read"] == rows == sample["rows"]
    assert rep["read"] == rep["accepted"] + rep["rejected"] + rep["duplicates"] + rep["suppressed"] + rep["excluded"]
    assert rep["rejected"] == sample["invalid"] and rep["accepted"] == parsed["report"]["accepted"] - rep["duplicates"]

    used = int(r.info("memory")["used_memory"])  # the whole campaign, attributes included
    r.flushall()
    numbers = child("numbers", redis_url, path)
    assert numbers["report"]["read"] == rows
    numbers_used = int(r.info("memory")["used_memory"])
    ref_rows = min(rows, 1_000_000)
    t = time.perf_counter()
    with open(path, newline="") as f:
        n = sum(1 for _ in csv.reader(f)) - 1
    csv_rate = min(n, ref_rows * 100) / (time.perf_counter() - t)
    r.flushall()
    t = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    for i in range(0, ref_rows, 10_000):
        pipe.rpush("ref", *range(84_900_000_000 + i, 84_900_000_000 + i + 10_000))
        pipe.execute()
    rpush_rate = ref_rows / (time.perf_counter() - t)
    r.flushall()
    assert redis_instance.port is not None
    hset_rate = redis_benchmark(redis_instance.port, "hset", 2_000_000 if full_size else 200_000)

    parse_rate = rows / parsed["seconds"]
    load_rate = rows / loaded["seconds"]
    numbers_rate = rows / numbers["seconds"]
    benchmark.extra_info.update(parse_rows_per_s=parse_rate, load_rows_per_s=load_rate, peak_rss=loaded["peak_rss"], correct=True)
    report(f"import of a {rows:,}-row CSV ({path.stat().st_size / 1e6:,.0f} MB)", [
        ("parse+normalise, rows/s (target >= 1M)", f"{parse_rate:,.0f}"),
        ("  reference: Python csv.reader, rows/s", f"{csv_rate:,.0f}"),
        ("  peak RSS of the parse", f"{parsed['peak_rss'] / 1e6:,.0f} MB"),
        ("load into Redis, rows/s (target >= 300k)", f"{load_rate:,.0f}"),
        ("  reference: redis-py RPUSH pipeline, numbers/s", f"{rpush_rate:,.0f}"),
        ("  reference: redis-benchmark -t hset -P 100, /s", f"{hset_rate:,.0f} (ours / it: {load_rate / hset_rate:.2f})"),
        ("  Redis CPU a row loaded (not its AOF rewrites)", f"{redis_us_per_row:.2f} us"),
        ("  peak RSS of the load (target < 500 MB)", f"{loaded['peak_rss'] / 1e6:,.0f} MB"),
        ("Redis used_memory after the load", f"{used / 1e6:,.0f} MB ({used / rep['accepted']:.0f} B a contact with name, segment)"),
        ("load, numbers only (attributes=False), rows/s", f"{numbers_rate:,.0f}"),
        ("  Redis used_memory, numbers only", f"{numbers_used / 1e6:,.0f} MB ({numbers_used / numbers['report']['accepted']:.0f} B a contact)"),
        ("report", json.dumps({k: v for k, v in rep.items() if k != 'rejections'})),
    ])
    assert loaded["peak_rss"] < 500e6
    if full_size:
        assert parse_rate >= 1_000_000 and load_rate >= 300_000

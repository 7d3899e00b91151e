"""Imports into one campaign run one at a time; an importer killed mid-way loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import dialer_core as dc

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_import_into_a_campaign_being_imported_is_refused(redis_url: str, write, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    r.set("{c:c1}:importing", "otherhost:1:1", px=60_000)
    with pytest.raises(dc.InvalidInput, match='another import into campaign "c1" is running'):
        dc.import_contacts(redis_url, write("l.txt", "0901234567\n"), "c1", country="VN")
    r.delete("{c:c1}:importing")
    assert dc.import_contacts(redis_url, write("l.txt", "0901234567\n"), "c1", country="VN")["accepted"] == 1
    assert r.get("{c:c1}:importing") is None  # released at the end


def test_an_importer_killed_mid_way_loses_nothing_and_running_it_again_completes_the_list(
    redis_url: str, tmp_path: Path, r: redis.Redis
) -> None:
    path = tmp_path / "list.csv"
    sample = dc.generate_sample(path, 600_000, seed=5, invalid_ratio=0.0, duplicate_ratio=0.01)
    args = [sys.executable, "-m", "api.cli", "--redis-url", redis_url, "import", str(path), "--campaign", "k", "--country", "VN"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("import: ")  # under way
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    loaded = r.llen("{c:k:p0}:ready")
    assert 0 < loaded
    # The dead importer's lock is taken over at once (same host, pid gone).
    again = dc.import_contacts(redis_url, path, "k", country="VN")
    ready = r.lrange("{c:k:p0}:ready", 0, -1)
    assert len(ready) == len(set(ready))  # nobody queued twice
    full = dc.parse_contacts(path, country="VN")
    distinct = full["accepted"] - sample["duplicates"]
    assert len(ready) == distinct  # nobody lost
    assert again["accepted"] == distinct - loaded

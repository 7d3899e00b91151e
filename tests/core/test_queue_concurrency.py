"""Several processes on one queue: every contact exactly once; a killed claimer loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dialer_core as dc

ROOT = Path(__file__).resolve().parents[2]
CLAIMER = [sys.executable, "-m", "tests.support.claimer"]
T0 = 1_800_000_000.0


def _load(redis_url: str, path: Path, campaign: str, n: int) -> list[str]:
    nums = [f"+8490{i:07d}" for i in range(n)]
    path.write_text("\n".join(nums) + "\n")
    assert dc.import_contacts(redis_url, path, campaign, country="VN")["accepted"] == n
    return nums


def test_four_processes_claim_and_complete_100k_contacts_each_exactly_once(redis_url: str, tmp_path: Path) -> None:
    nums = _load(redis_url, tmp_path / "list.txt", "conc", 100_000)
    outs = [tmp_path / f"out{i}.txt" for i in range(4)]
    procs = [subprocess.Popen([*CLAIMER, redis_url, "conc", str(o), "--batch", "300"], cwd=ROOT) for o in outs]
    for p in procs:
        assert p.wait(timeout=240) == 0
    got = [line for o in outs for line in o.read_text().split()]
    per_process = [len(o.read_text().split()) for o in outs]
    assert len(got) == 100_000, per_process
    assert sorted(got) == sorted(nums)  # each exactly once: no loss, no double delivery
    assert all(n > 0 for n in per_process), per_process  # they really ran concurrently
    stats = dc.CallQueue(redis_url, "conc").stats()
    assert stats["counters"]["final"] == 100_000
    assert (stats["ready"], stats["leased"]) == (0, 0)


def test_contacts_of_a_claimer_killed_with_sigkill_come_back_after_the_lease_deadline(redis_url: str, tmp_path: Path) -> None:
    nums = _load(redis_url, tmp_path / "list.txt", "kill", 300)
    out = tmp_path / "held.txt"
    proc = subprocess.Popen(
        [*CLAIMER, redis_url, "kill", str(out), "--hold", "200", "--now", str(T0), "--lease", "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held 200"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    held = out.read_text().split()
    assert held == nums[:200]

    q = dc.CallQueue(redis_url, "kill")
    before = q.claim(1000, now=T0 + 29)  # before the deadline: only the 100 never claimed
    assert [c.number for c in before] == nums[200:]
    after = q.claim(1000, now=T0 + 30.5)
    assert sorted(c.number for c in after) == sorted(held)
    assert all(c.source == "retry" and c.attempts == 0 for c in after)
    done = q.complete([(c, "answered") for c in before + after], now=T0 + 31)
    assert done == ["final"] * 300
    assert q.claim(1000, now=T0 + 10_000) == []

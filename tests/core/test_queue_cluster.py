"""The call queue (Rust core) on a real Redis Cluster of 3 primaries and 3 replicas: the same
calls as on one Redis, its partitions on different primaries."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import dialer_core as dc

from tests.support.redis_cluster import RedisCluster

ROOT = Path(__file__).resolve().parents[2]
CLAIMER = [sys.executable, "-m", "tests.support.claimer"]
T0 = 1_800_000_000.0


def cluster_url(cluster: RedisCluster) -> str:
    return cluster.url


def spread_campaign(cluster: RedisCluster, partitions: int, at_least: int) -> str:
    """A new campaign id whose `partitions` partitions are served by at least `at_least`
    primaries (the slot of a partition follows from its id)."""
    for _ in range(100):
        cid = "cl" + uuid.uuid4().hex[:8]
        owners = {cluster.primary_of(dc.partition_key(cid, p, partitions=partitions)) for p in range(partitions)}
        if len(owners) >= at_least:
            return cid
    raise AssertionError("no campaign id spreads its partitions")


def load(url: str, path: Path, cid: str, n: int, partitions: int) -> list[str]:
    nums = [f"+8490{i:07d}" for i in range(n)]
    path.write_text("number,name\n" + "".join(f"{x},n{i}\n" for i, x in enumerate(nums)))
    report = dc.import_contacts(url, path, cid, country="VN", partitions=partitions, batch_size=2_000)
    assert report["accepted"] == n, report
    return nums


def test_four_claimers_in_two_processes_take_each_contact_once_across_primaries(
        redis_cluster: RedisCluster, tmp_path: Path) -> None:
    url = cluster_url(redis_cluster)
    cid = spread_campaign(redis_cluster, 4, at_least=3)
    nums = load(url, tmp_path / "list.csv", cid, 20_000, partitions=4)
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    procs = [subprocess.Popen([*CLAIMER, url, cid, str(o), "--batch", "200", "--threads", "2", "--partitions", "4"],
                              cwd=ROOT) for o in outs]
    for p in procs:
        assert p.wait(timeout=240) == 0
    got = [line for o in outs for line in o.read_text().split()]
    per_process = [len(o.read_text().split()) for o in outs]
    assert sorted(got) == sorted(nums), per_process  # each exactly once: no loss, no double delivery
    assert all(n > 0 for n in per_process), per_process
    stats = dc.CallQueue(url, cid).stats()
    assert stats["counters"]["final"] == 20_000
    assert (stats["ready"], stats["leased"]) == (0, 0)
    # The keys really are spread: each primary holds some of the campaign's partitions.
    held = {addr: 0 for addr in redis_cluster.primaries()}
    for p in range(4):
        held[redis_cluster.primary_of(dc.partition_key(cid, p, partitions=4))] += 1
    assert sum(1 for n in held.values() if n) >= 3, held


def test_marks_retries_listing_and_suppression_work_across_the_clusters_slots(
        redis_cluster: RedisCluster, tmp_path: Path) -> None:
    url = cluster_url(redis_cluster)
    cid = spread_campaign(redis_cluster, 3, at_least=2)
    nums = load(url, tmp_path / "list.csv", cid, 300, partitions=3)
    listname = "cl-supp-" + uuid.uuid4().hex[:6]
    (tmp_path / "supp.txt").write_text(nums[0] + "\n" + nums[1] + "\n")
    assert dc.load_suppression_list(url, listname, tmp_path / "supp.txt", country="VN")["added"] == 2
    assert any(i["name"] == listname and i["count"] == 2 for i in dc.suppression_lists(url))
    q = dc.CallQueue(url, cid, max_attempts=2, retry_delay_s=60, retry_on=["busy"])
    q.set_suppression_lists([listname])
    assert q.suppression_lists() == [listname]

    claims = [c for p in range(3) for c in q.claim(500, partition=p, now=T0, with_attrs=True)]
    assert sorted(c.number for c in claims) == sorted(nums[2:])  # the suppressed two are not handed out
    assert {c.attrs["name"] for c in claims} == {f"n{i}" for i in range(2, 300)}
    # One mark call spanning the three partitions (three slots, two or three primaries).
    assert q.mark(claims, answered=True, details=["d"] * len(claims)) == len(claims)
    marked = sum(len(q.marks(partition=p)) for p in range(3))
    assert marked == len(claims)
    busy, rest = claims[:50], claims[50:]
    results = q.complete([(c, "busy") for c in busy] + [(c, "answered") for c in rest], now=T0 + 1)
    assert results == ["retry"] * 50 + ["final"] * len(rest)
    assert q.contact(busy[0].number)["state"] == "waiting_retry"
    again = [c for p in range(3) for c in q.claim(500, partition=p, now=T0 + 120)]
    assert sorted(c.number for c in again) == sorted(c.number for c in busy)
    assert all(c.source == "retry" and c.attempts == 1 for c in again)
    assert q.complete([(c, "busy") for c in again], now=T0 + 121) == ["exhausted"] * 50

    stats = q.stats(now=T0 + 200)
    assert stats["counters"]["final"] == len(rest)
    assert (stats["ready"], stats["leased"]) == (0, 0)
    listed: list[str] = []
    cursor = None
    while True:
        page = q.contacts(cursor=cursor, count=64)
        listed += [c["number"] for c in page["contacts"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(listed) == sorted(nums)  # the suppressed two are listed too
    assert q.contact(nums[0])["state"] == "done"  # counted as suppressed when a claim met it


def test_a_primary_killed_mid_claims_loses_no_contact_and_its_replica_takes_over(
        redis_cluster: RedisCluster, tmp_path: Path) -> None:
    url = cluster_url(redis_cluster)
    cid = spread_campaign(redis_cluster, 4, at_least=3)
    n = 24_000
    nums = load(url, tmp_path / "list.csv", cid, n, partitions=4)
    victim = redis_cluster.primary_of(dc.partition_key(cid, 0, partitions=4))
    survivors = [s for s in redis_cluster.seeds if s != victim]
    url = "redis+cluster://" + ",".join(survivors[:2])  # the claimers must find the cluster without it
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    procs = [subprocess.Popen([*CLAIMER, url, cid, str(o), "--batch", "50", "--threads", "2", "--partitions", "4",
                               "--pause", "0.02", "--lease", "3", "--ride-out", "30"], cwd=ROOT) for o in outs]
    try:
        time.sleep(1.0)
        redis_cluster.kill(victim)
        killed_at = time.time()
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    lines = [line.split() for o in outs for line in o.read_text().splitlines()]
    handed = Counter(num for num, _, _ in lines)
    times = sorted(float(t) for _, t, _ in lines)
    assert set(handed) == set(nums)  # nothing lost
    twice = sum(1 for c in handed.values() if c > 1)
    before = sum(1 for t in times if t < killed_at)
    # Seconds without any claim landing on the dead primary's partition: the failover's cost.
    p0_times = sorted(float(t) for _, t, part in lines if part == "0")
    gap = max((b - a for a, b in zip(p0_times, p0_times[1:]) if b > killed_at - 0.5), default=0.0)
    print(f"\nfailover: {before} of {n} claimed before the kill; partition 0 had no claim for {gap:.1f} s; "
          f"{twice} contacts handed out twice; new primary {redis_cluster.primary_of(dc.partition_key(cid, 0, partitions=4))}")
    assert redis_cluster.primary_of(dc.partition_key(cid, 0, partitions=4)) != victim
    assert 0 < before < n  # the kill came mid-way
    stats = dc.CallQueue(url, cid).stats()
    assert stats["counters"]["final"] == n
    assert (stats["ready"], stats["leased"]) == (0, 0)
    assert twice <= 2 * 50 * 4, twice  # at most the batches in flight when the primary died, per claimer
    redis_cluster.restart(victim)

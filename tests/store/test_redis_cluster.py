"""The local Redis Cluster the cluster tests share (`tests/support/redis_cluster.py`), and the
key layout checked against it: each group of keys one script or transaction touches shares a
hash slot, as Redis Cluster requires (issue 18: where each key lives)."""

from __future__ import annotations

import dialer_core

from store import keys
from tests.support.redis_cluster import RedisCluster

#: The suffixes of a partition's keys (core-rs/src/queue/mod.rs's layout, and `:run`).
PARTITION_SUFFIXES = [":ready", ":retry", ":cb", ":lh", ":lb", ":lb:17", ":dm", ":ad", ":k:5", ":ap:3", ":apseq",
                      ":cols", ":meta", ":stat", ":seq", ":run"]


def test_three_primaries_each_with_a_replica_serve_every_slot(redis_cluster: RedisCluster) -> None:
    primaries = redis_cluster.primaries()
    assert len(primaries) == 3
    assert sum(b - a + 1 for ranges in primaries.values() for a, b in ranges) == 16384
    with redis_cluster.nodes[0].client() as c:
        nodes = [line.split() for line in c.execute_command("CLUSTER", "NODES").decode().splitlines()]
    replicas = [n for n in nodes if "slave" in n[2]]
    masters = {n[0] for n in nodes if "master" in n[2]}
    assert len(replicas) == 3 and {r[3] for r in replicas} == masters  # one replica of each primary
    cluster = redis_cluster.client()
    try:
        cluster.set("{c:probe}:x", "1")
        assert cluster.get("{c:probe}:x") == b"1"
    finally:
        cluster.close()


def test_each_group_of_keys_shares_one_slot(redis_cluster: RedisCluster) -> None:
    with redis_cluster.nodes[0].client() as c:

        def slot(key: str) -> int:
            return int(c.execute_command("CLUSTER", "KEYSLOT", key))

        cid = "c-1a2b3c4d5e"
        # A campaign's control keys, and the dial sets and owner leases its scripts use with them.
        control = [*keys.campaign_control_keys(cid), keys.partition_owner(cid, 3), keys.dial_set(cid, 3),
                   keys.dialing(cid, 3), keys.sms_state(cid), keys.sms_outbox(cid)]
        assert len({slot(k) for k in control}) == 1, {k: slot(k) for k in control}
        # Each partition's queue keys, in the slot of its base (the claim and complete scripts
        # touch only these).
        for p in range(4):
            base = dialer_core.partition_key(cid, p, partitions=4)
            group = [base + s for s in PARTITION_SUFFIXES] + [keys.partition_runs(cid, p, partitions=4)]
            assert {slot(k) for k in group} == {slot(base)}, {k: slot(k) for k in group}
        # A campaign of N partitions puts them in N equal shares of the slots, so on 3 primaries
        # with equal slot ranges (as `redis-cli --cluster create` makes them) N = 3k gives each
        # primary k, whatever the campaign's id.
        for c in (cid, "spring-2026", "x"):
            for n in (1, 2, 3, 4, 6, 12):
                held: dict[str, int] = {}
                for p in range(n):
                    a = redis_cluster.primary_of(dialer_core.partition_key(c, p, partitions=n))
                    held[a] = held.get(a, 0) + 1
                if n % 3 == 0:
                    assert sorted(held.values()) == [n // 3] * 3, (c, n, held)
                else:
                    assert len(held) == min(n, 3) and max(held.values()) - min(held.values()) <= 1, (c, n, held)

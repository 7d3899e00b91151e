"""A real Redis Cluster on loopback, for `dialer demo --cluster` and the tests: 3 primaries and
3 replicas of Debian's redis-server (`cluster-enabled yes`, AOF `everysec`), created with
`redis-cli --cluster create --cluster-replicas 1`, ready once every node says `cluster_state:ok`,
every replica's link to its primary is up and every node's own view of the cluster has settled;
stopped by PID. The tests share one per session (`conftest.py`'s `redis_cluster`) and kill and
restart its nodes (`RedisCluster.kill`, `restart`)."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

#: How long a silent node is thought alive before its replica takes over (ms); the tests' failover
#: time follows it. Redis's default is 15 s.
NODE_TIMEOUT_MS = 2000


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (10,000 higher, which Redis requires to be a
    valid port: so the port is at most 55535) is free too."""
    for _ in range(200):
        port = random.randint(20_000, 45_000)
        try:
            for p in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class ClusterNode:
    port: int
    proc: subprocess.Popen[bytes]
    #: its redis.conf (its directory holds nodes.conf, the AOF and redis.log)
    conf: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@dataclass
class RedisCluster:
    nodes: list[ClusterNode] = field(default_factory=list)
    #: how many primaries it was made with (a restarted node counts as ready once they are back)
    primaries_wanted: int = 3

    @property
    def seeds(self) -> list[str]:
        """host:port of every node (a client needs one or more of them to find the rest)."""
        return [n.address for n in self.nodes]

    @property
    def url(self) -> str:
        """The cluster's URL for the store (`store.connection`): every node a seed."""
        return "redis+cluster://" + ",".join(self.seeds)

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.live().port, socket_timeout=5)

    def live(self) -> ClusterNode:
        """A node whose process runs (the first node may have been killed by a test)."""
        return next(n for n in self.nodes if n.proc.poll() is None)

    def kill(self, address: str) -> ClusterNode:
        """SIGKILL the node at `address` (host:port) and wait for it to die."""
        node = next(n for n in self.nodes if n.address == address)
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(timeout=10)
        return node

    def restart(self, address: str, timeout: float = 60.0) -> None:
        """Start a killed node again from its own config and wait until it serves as a replica:
        it rejoins as one of whoever took its slots, so the cluster has its 3 + 3 again."""
        node = next(n for n in self.nodes if n.address == address)
        node.proc = subprocess.Popen(["redis-server", str(node.conf)], cwd=node.conf.parent,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with node.client() as c:
                    rep = c.info("replication")
                    if rep["role"] == "slave" and rep.get("master_link_status") == "up" \
                            and _ready(self.nodes, self.primaries_wanted):
                        return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{address} did not rejoin the cluster as a replica in {timeout:.0f} s")

    def primaries(self) -> dict[str, list[tuple[int, int]]]:
        """host:port of each primary -> the slot ranges it serves, as the cluster says now."""
        with self.live().client() as c:
            slots = c.execute_command("CLUSTER", "SLOTS")
        out: dict[str, list[tuple[int, int]]] = {}
        for start, end, primary, *_ in slots:
            host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
            out.setdefault(f"{host}:{int(primary[1])}", []).append((int(start), int(end)))
        return out

    def primary_of(self, key: str) -> str:
        """host:port of the primary serving `key`'s slot."""
        with self.live().client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        for addr, ranges in self.primaries().items():
            if any(a <= slot <= b for a, b in ranges):
                return addr
        raise LookupError(f"slot {slot} of {key!r} is served by nobody")


def _ready(nodes: list[ClusterNode], primaries: int) -> bool:
    """Every node says cluster_state:ok, each replica's link is up, and every node's own view
    (CLUSTER NODES) holds `primaries` primaries with slots, each with a replica, and nobody
    flagged fail or pfail: gossip has settled, so a test sees the cluster it was promised."""
    for n in nodes:
        try:
            with n.client() as c:
                info = c.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
                rep = c.info("replication")
                if rep["role"] == "slave" and rep.get("master_link_status") != "up":
                    return False
                view = [line.split() for line in c.execute_command("CLUSTER", "NODES").decode().splitlines()]
        except redis.RedisError:
            return False
        if any("fail" in v[2] for v in view):  # fail or fail?
            return False
        masters = {v[0] for v in view if "master" in v[2] and len(v) > 8}
        served = {v[3] for v in view if "slave" in v[2]}
        if len(masters) != primaries or len(view) != len(nodes) or served != masters:
            return False
    return True


@contextmanager
def redis_cluster(workdir: Path, primaries: int = 3, replicas: int = 1, timeout: float = 60.0) -> Iterator[RedisCluster]:
    cluster = RedisCluster()
    try:
        for _ in range(primaries * (1 + replicas)):
            port = cluster_port()
            d = workdir / str(port)
            d.mkdir(parents=True)
            conf = d / "redis.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {d}\ncluster-enabled yes\n"
                f"cluster-config-file nodes.conf\ncluster-node-timeout {NODE_TIMEOUT_MS}\nappendonly yes\n"
                "appendfsync everysec\nsave \"\"\nlogfile redis.log\n")
            proc = subprocess.Popen(["redis-server", str(conf)], cwd=d, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            cluster.nodes.append(ClusterNode(port, proc, conf))
        deadline = time.monotonic() + timeout
        for n in cluster.nodes:
            while True:
                try:
                    with n.client() as c:
                        c.ping()
                    break
                except redis.ConnectionError:
                    if n.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on {n.address} did not start: see {workdir / str(n.port)}")
                    time.sleep(0.05)
        made = subprocess.run(["redis-cli", "--cluster", "create", *cluster.seeds, "--cluster-replicas", str(replicas),
                               "--cluster-yes"], capture_output=True, text=True, timeout=timeout)
        if made.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {made.stdout[-2000:]} {made.stderr[-2000:]}")
        cluster.primaries_wanted = primaries
        while not _ready(cluster.nodes, primaries):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not reach cluster_state:ok in {timeout:.0f} s")
            time.sleep(0.1)
        yield cluster
    finally:
        for n in cluster.nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in cluster.nodes:
            try:
                n.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()

"""The Redis URL convention: `redis+cluster://host:port[,host:port...]` opens a cluster client, any
other URL one Redis as before; a malformed cluster URL is refused with what is wrong with it."""

from __future__ import annotations

import asyncio
import re

import pytest
import redis.asyncio as aioredis

from store.connection import COMMAND_TIMEOUT_S, ClusterUrl, connect, is_cluster_url, parse_cluster_url


@pytest.mark.parametrize("url, cluster", [
    ("redis+cluster://10.0.0.1:7000", True),
    ("REDIS+CLUSTER://10.0.0.1:7000,10.0.0.2:7000", True),
    ("redis://127.0.0.1:6379/0", False),
    ("unix:///run/redis.sock", False),
    ("rediss://redis+cluster.example:6380", False),
    ("redis+cluster", False),
])
def test_a_cluster_is_named_by_its_scheme(url: str, cluster: bool) -> None:
    assert is_cluster_url(url) is cluster


def test_seeds_credentials_and_options_are_read() -> None:
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002,cache") == ClusterUrl(
        seeds=(("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002), ("cache", 6379)))
    c = parse_cluster_url("redis+cluster://dialer:p%40ss@10.0.0.1:7000/0?socket_timeout=2&health_check_interval=5")
    assert (c.username, c.password, c.seeds) == ("dialer", "p@ss", (("10.0.0.1", 7000),))
    assert c.options == {"socket_timeout": 2.0, "health_check_interval": 5}
    assert parse_cluster_url("redis+cluster://:secret@h:1").password == "secret"
    assert parse_cluster_url("redis+cluster://:secret@h:1").username is None


@pytest.mark.parametrize("url, says", [
    ("redis+cluster://", "has no host"),
    ("redis+cluster://:7000", "has no host"),
    ("redis+cluster://10.0.0.1:7000,,10.0.0.2:7000", "has no host"),
    ("redis+cluster://10.0.0.1:seven", "bad port"),
    ("redis+cluster://10.0.0.1:0", "bad port"),
    ("redis+cluster://10.0.0.1:65536", "bad port"),
    ("redis+cluster://10.0.0.1:7000:1", "bad port"),
    ("redis+cluster://10.0.0.1:7000/1", "only database 0"),
    ("redis+cluster://10.0.0.1:7000?db=2", "only database 0"),
    ("redis+cluster://10.0.0.1:7000?colour=blue", "colour: not an option"),
    ("redis://10.0.0.1:7000", "is not a redis+cluster:// URL"),
])
def test_a_malformed_cluster_url_is_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_cluster_url(url)
    if is_cluster_url(url):
        with pytest.raises(ValueError, match=re.escape(says)):
            connect(url)


def test_connect_opens_a_cluster_client_for_a_cluster_url_and_one_redis_otherwise() -> None:
    """No connection is made here: both clients connect at their first command."""
    cluster = connect("redis+cluster://127.0.0.1:7000,127.0.0.1:7001?max_connections=3", max_connections=64)
    single = connect("redis://127.0.0.1:6379/0")
    try:
        assert isinstance(cluster, aioredis.RedisCluster) and not isinstance(single, aioredis.RedisCluster)
        assert [(n.host, n.port) for n in cluster.startup_nodes] == [("127.0.0.1", 7000), ("127.0.0.1", 7001)]
        kwargs = cluster.get_connection_kwargs()
        assert kwargs["decode_responses"] is True and kwargs["socket_timeout"] == COMMAND_TIMEOUT_S
        assert kwargs["max_connections"] == 3  # the URL's, per node, as its gate's size
        assert cluster.gate.size == 3  # type: ignore[attr-defined]
    finally:
        asyncio.run(cluster.aclose())
        asyncio.run(single.aclose())



def test_writing_on_a_transport_uvloop_closed_raises_connection_error(redis_url: str) -> None:
    """A pooled connection whose transport uvloop has closed (it does on a reset from a node that
    died, mid-failover) must raise `redis.ConnectionError` when written, which redis-py's retries
    and the cluster client's topology refresh act on. redis-py 8.1 wrote into it and uvloop raised
    a bare RuntimeError ("the handler is closed"): in CI it ended the SMS sender's role with a
    traceback during a primary's failover. 8.2 checks first; pyproject asks for it. (The transport
    is closed here by hand: a reset's timing cannot be had on demand.)"""
    import redis
    import uvloop

    async def main() -> None:
        pool = aioredis.ConnectionPool.from_url(redis_url)
        conn = await pool.get_connection()
        try:
            assert conn._writer is not None
            conn._writer.transport.close()
            await asyncio.sleep(0.05)  # uvloop frees the handle on its next turn
            with pytest.raises(redis.ConnectionError):
                await conn.send_packed_command(b"*1\r\n$4\r\nPING\r\n", check_health=False)
        finally:
            await pool.disconnect()

    uvloop.run(main())

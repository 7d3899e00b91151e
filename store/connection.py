"""The one way the Python side opens a Redis client: one Redis, or a Redis Cluster.

- `redis://`, `rediss://`, `unix://` URLs: one Redis (redis-py's URL, as it always was).
- `redis+cluster://[user:password@]host:port[,host:port...][?option=value...]`: a Redis Cluster
  found from these seed nodes (any one that answers is enough). The query's options are redis-py's
  (cast as for a `redis://` URL: `socket_timeout`, `health_check_interval` ...); `max_connections`
  and `timeout` set the waiting described below; anything `RedisCluster` does not take is refused.
- Every connection has timeouts: connecting (`CONNECT_TIMEOUT_S`) and each command
  (`COMMAND_TIMEOUT_S`, longer than the longest blocking read anyone issues: XREAD and
  XREADGROUP block at most a second), so a Redis that stops answering raises instead of
  hanging a task forever.
- Past `max_connections` commands wait for a free connection (up to `timeout` seconds) instead of
  failing - redis-py's default pool raises "Too many connections" at 100, which a burst of
  requests or delivery receipts reaches. One Redis: a blocking pool. A cluster: redis-py has no
  blocking pool there (a node past its `max_connections` raises `MaxConnectionsError`), so the
  client lets `max_connections` commands or pipelines run at once and the rest wait (`_Gate`);
  each of them holds at most one connection of a node at a time, so no node's limit is reached.
- redis-py looks its own version up in the package metadata (files on disk) for every new
  connection unless it is told: here it is told once, so opening a connection never blocks the
  event loop on the file system.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
import redis.cluster
from redis.asyncio.cluster import ClusterNode, ClusterPipeline
from redis.asyncio.connection import parse_url
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as _RedisConnectionError

_DRIVER = DriverInfo(name="redis-py", lib_version=redis.__version__)
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0
CLUSTER_SCHEME: Final = "redis+cluster"

#: The asyncio client type the store's classes hold: one Redis or a cluster (mypy checks every
#: call against both). Both answer every command the store sends with the same meaning; where
#: they differ the store asks which it has: MULTI/EXEC and the order of a pipeline's writes
#: (`store/steps.py`), a read over several campaigns' streams (`Campaigns.events_of`), the server's
#: run id and PING (`Store.server_id`, `Store.ping`: one node's on a cluster, unless told), UNLINK
#: on a pipeline (`steps.unlink`). DEL, UNLINK and EXISTS of several keys are split by slot by
#: redis-py's cluster client (their counts summed), SCAN visits every primary.
Client = aioredis.Redis | aioredis.RedisCluster
#: A pipeline of either.
Pipe = aioredis.client.Pipeline | ClusterPipeline
SyncClient = redis.Redis | redis.RedisCluster


def is_cluster_url(url: str) -> bool:
    """Does `url` name a Redis Cluster (`redis+cluster://...`)?"""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() == CLUSTER_SCHEME


def is_cluster(client: Client) -> bool:
    return isinstance(client, aioredis.RedisCluster)


@dataclass(frozen=True)
class ClusterUrl:
    """A parsed `redis+cluster://` URL."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    #: redis-py options from the query, cast as redis-py casts a `redis://` URL's.
    options: dict[str, Any] = field(default_factory=dict)


#: host[:port] or [IPv6]:port; whatever follows the first colon is the port (checked after).
_SEED = re.compile(r"\[(?P<v6>[^\]]*)\](?::(?P<p6>.*))?|(?P<host>[^:\[\]]*)(?::(?P<port>.*))?")


def parse_cluster_url(url: str) -> ClusterUrl:
    """The seeds, credentials and options of a `redis+cluster://` URL; `ValueError` says what is
    wrong with a malformed one (no host, a bad port, a database other than 0 ...)."""
    if not is_cluster_url(url):
        raise ValueError(f"{url!r} is not a {CLUSTER_SCHEME}:// URL")
    rest = url.partition("://")[2].partition("#")[0]
    netloc, _, query = rest.partition("?")
    netloc, _, db = netloc.partition("/")
    if db not in ("", "0"):
        raise ValueError(f"Redis URL {url!r}: a cluster has only database 0, not {db!r}")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(pw) if colon else None
    seeds = []
    for seed in netloc.split(","):
        m = _SEED.fullmatch(seed.strip())
        host = m and (m["v6"] if m["v6"] is not None else m["host"])
        if not host:
            raise ValueError(f"Redis URL {url!r}: seed {seed!r} has no host (expected host:port[,host:port...])")
        port = (m["p6"] if m["v6"] is not None else m["port"]) if m else None
        if port is None:
            seeds.append((host, 6379))
        elif port.isdigit() and 0 < int(port) < 65536:
            seeds.append((host, int(port)))
        else:
            raise ValueError(f"Redis URL {url!r}: seed {seed!r} has a bad port {port!r} (1-65535)")
    options = {k: v for k, v in parse_url(f"redis://localhost?{query}").items() if k != "host"}
    if options.get("db", 0) != 0:
        raise ValueError(f"Redis URL {url!r}: a cluster has only database 0")
    options.pop("db", None)
    unknown = sorted(set(options) - _CLUSTER_OPTIONS)
    if unknown:
        raise ValueError(f"Redis URL {url!r}: {', '.join(unknown)}: not an option of a Redis Cluster client")
    return ClusterUrl(tuple(seeds), username, password, options)


#: What a cluster URL's query may set: `RedisCluster`'s own keyword parameters (not those the
#: URL itself gives), and the waiting for a connection.
_CLUSTER_OPTIONS: Final = frozenset(
    {p for p in inspect.signature(aioredis.RedisCluster.__init__).parameters
     if p not in ("self", "host", "port", "startup_nodes", "db", "path", "username", "password")}
    | {"timeout"})


# -- one Redis or a cluster: the clients -----------------------------------------------------------


def connect(url: str, *, max_connections: int = 64, timeout: float = 10.0) -> Client:
    """An asyncio client (a connection pool, or one per cluster node) for `url`, answering `str`s."""
    if is_cluster_url(url):
        return _connect_cluster(parse_cluster_url(url), max_connections, timeout)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, driver_info=_DRIVER, max_connections=max_connections, timeout=timeout,
        socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S)
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


def connect_sync(url: str) -> SyncClient:
    """A blocking client for the command line (`dialer token ...`)."""
    if is_cluster_url(url):
        c = parse_cluster_url(url)
        options = {k: v for k, v in c.options.items() if k != "timeout"}
        options = {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": COMMAND_TIMEOUT_S, **options}
        seeds = [redis.cluster.ClusterNode(h, p) for h, p in c.seeds]  # type: ignore[no-untyped-call]  # (not annotated)
        return redis.RedisCluster(startup_nodes=seeds,
                                  username=c.username, password=c.password, decode_responses=True,
                                  driver_info=_DRIVER, **options)
    return redis.Redis.from_url(url, decode_responses=True, driver_info=_DRIVER,
                                socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S)


def _connect_cluster(c: ClusterUrl, max_connections: int, timeout: float) -> aioredis.RedisCluster:
    options = dict(c.options)
    # As in a `redis://` URL, the query's values win over the caller's.
    max_connections = int(options.pop("max_connections", max_connections))
    timeout = float(options.pop("timeout", timeout))
    options = {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": COMMAND_TIMEOUT_S, **options}
    return _Cluster(startup_nodes=[ClusterNode(h, p) for h, p in c.seeds], username=c.username,
                    password=c.password, decode_responses=True, driver_info=_DRIVER,
                    max_connections=max_connections, gate=_Gate(max_connections, timeout), **options)


# -- waiting for a connection on a cluster -----------------------------------------------------------

#: Set in a task (and the tasks it starts) while it holds the gate: redis-py sends a pipeline's
#: redirected commands through the client again, which must not wait for a second place.
_HOLDING: ContextVar[bool] = ContextVar("dialer_redis_gate", default=False)


class _Gate:
    """At most `size` commands or pipelines of one cluster client at once; the others wait, up
    to `timeout` seconds (then `ConnectionError`, as the single Redis's blocking pool says)."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size, self.timeout = size, timeout
        self._places = asyncio.Semaphore(size)

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        if _HOLDING.get():
            yield
            return
        try:
            await asyncio.wait_for(self._places.acquire(), self.timeout)
        except TimeoutError:
            raise _RedisConnectionError(f"no Redis connection free within {self.timeout:.0f} s "
                                        f"({self.size} in use)") from None
        token = _HOLDING.set(True)
        try:
            yield
        finally:
            _HOLDING.reset(token)
            self._places.release()


class _Cluster(aioredis.RedisCluster):
    """redis-py's cluster client, with its commands and pipelines waiting at the `_Gate`."""

    def __init__(self, *, gate: _Gate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate.place():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if transaction:
            # redis-py 8.1 queues each command of a cluster transaction through a thread it
            # starts and joins: the event loop would stop for each (`store/steps.py`).
            raise ValueError("no MULTI/EXEC on the cluster client: it blocks the event loop (use store.steps.Steps)")
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused there
        # mypy counts the `_event_dispatcher` that redis-py's command protocols declare (and no
        # pipeline sets) as abstract; `RedisCluster.pipeline` makes a `ClusterPipeline` just so.
        return _GatedPipeline(self, transaction)  # type: ignore[abstract]


class _GatedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, _Cluster)
        async with client.gate.place():
            return await super().execute(raise_on_error, allow_redirections)

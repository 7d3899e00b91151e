"""The one way the Python side opens a Redis client.

- Every connection has timeouts: connecting (`CONNECT_TIMEOUT_S`) and each command
  (`COMMAND_TIMEOUT_S`, longer than the longest blocking read anyone issues: XREAD and
  XREADGROUP block at most a second), so a Redis that stops answering raises instead of
  hanging a task forever.
- A blocking pool: past `max_connections` commands wait for a free connection (up to `timeout`
  seconds) instead of failing - redis-py's default pool raises "Too many connections" at 100,
  which a burst of requests or delivery receipts reaches.
- redis-py looks its own version up in the package metadata (files on disk) for every new
  connection unless it is told: here it is told once, so opening a connection never blocks the
  event loop on the file system.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.driver_info import DriverInfo

_DRIVER = DriverInfo(name="redis-py", lib_version=redis.__version__)
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0

#: The asyncio client type the store's classes hold.
Client = aioredis.Redis


def connect(url: str, *, max_connections: int = 64, timeout: float = 10.0) -> aioredis.Redis:
    """An asyncio client (a connection pool) for `url`, answering `str`s."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, driver_info=_DRIVER, max_connections=max_connections, timeout=timeout,
        socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S)
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


def connect_sync(url: str) -> redis.Redis:
    """A blocking client for the command line (`dialer token ...`)."""
    return redis.Redis.from_url(url, decode_responses=True, driver_info=_DRIVER,
                                socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S)

"""The one way the Python side opens an asyncio Redis client.

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


def connect(url: str, *, max_connections: int = 64, timeout: float = 10.0) -> aioredis.Redis:
    """A client (a connection pool) for `url`, answering `str`s."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, driver_info=_DRIVER, max_connections=max_connections, timeout=timeout)
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool

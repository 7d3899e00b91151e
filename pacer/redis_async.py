"""The one way the Python side opens an asyncio Redis client.

redis-py looks its own version up in the package metadata (files on disk) for every new
connection unless it is told: here it is told once, so opening a connection never blocks the
event loop on the file system.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.driver_info import DriverInfo

_DRIVER = DriverInfo(name="redis-py", lib_version=redis.__version__)


def connect(url: str) -> aioredis.Redis:
    """A client (a connection pool) for `url`, answering `str`s."""
    return aioredis.Redis.from_url(url, decode_responses=True, driver_info=_DRIVER)

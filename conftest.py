"""Real fixtures: a redis-server per test session on a free loopback port, flushed per test; and
the blocking-call detector around every test.

Async code under test must never block its event loop: blockbuster raises on any blocking call
(socket, file, sleep) that the project's packages make from a thread whose event loop is running.
It is armed for every test (it flags nothing outside a running loop, so synchronous tests are
unaffected). A test's own code is not scanned: it may play a blocking peer (an attacker's
socket, a file it writes). No exemptions in the packages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from blockbuster import BlockBuster, blockbuster_ctx

from api.embedded_redis import EmbeddedRedis
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_cluster import redis_cluster as _redis_cluster
from tests.support.redis_server import redis_server as _redis_server


@pytest.fixture(scope="session")
def redis_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with _redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """3 primaries and 3 replicas, started for the first test that asks, shared by the session."""
    with _redis_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def redis_url(redis_instance: EmbeddedRedis) -> Iterator[str]:
    client = redis.Redis.from_url(redis_instance.url)
    client.flushall()
    client.config_set("maxmemory", 0)
    client.close()
    yield redis_instance.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """write("name.csv", "text") -> Path"""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    with blockbuster_ctx(["store", "pacer", "api", "sip_gateway"]) as bb:
        yield bb

"""Redis going away and coming back, and Redis full, seen from a long-lived queue handle."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

import dialer_core as dc
from api.embedded_redis import EmbeddedRedis
from tests.support.redis_server import free_port

T0 = 1_800_000_000.0


def test_a_queue_handle_outlives_a_redis_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "st", port=free_port())
    server.start()
    try:
        lst = tmp_path / "l.txt"
        lst.write_text("".join(f"+8490{i:07d}\n" for i in range(10)))
        dc.import_contacts(server.url, lst, "r", country="VN")
        q = dc.CallQueue(server.url, "r")
        first = q.claim(3, now=T0)
        server.stop()
        with pytest.raises(dc.RedisUnavailable):
            q.claim(3, now=T0)
        server.start()  # same data directory: the AOF brings the queue back
        assert q.complete([(c, "answered") for c in first], now=T0) == ["final"] * 3
        assert len(q.claim(10, now=T0)) == 7
    finally:
        server.stop()


def test_claim_on_a_full_redis_is_a_clear_error_and_changes_nothing(redis_url: str, tmp_path: Path, r: redis.Redis) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text("".join(f"+8490{i:07d}\n" for i in range(10)))
    dc.import_contacts(redis_url, lst, "f", country="VN")
    q = dc.CallQueue(redis_url, "f")
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(dc.RedisFull, match="full"):
            q.claim(5, now=T0)
    finally:
        r.config_set("maxmemory", 0)
    assert q.stats(now=T0)["ready"] == 10
    assert len(q.claim(10, now=T0)) == 10

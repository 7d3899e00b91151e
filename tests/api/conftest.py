"""The API under test is the real `dialer serve` process, over real HTTP, against the session's
real redis-server (flushed before each test by the `redis_url` fixture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import create_token
from api.embedded_redis import EmbeddedRedis
from tests.support.api_server import ApiServer, api_server


@pytest.fixture(scope="session")
def server(redis_instance: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(redis_instance.url, tmp_path_factory.mktemp("serve")) as s:
        yield s


Client = Callable[..., httpx.Client]


@pytest.fixture
def client(server: ApiServer, redis_url: str) -> Iterator[Client]:
    """client(role, agent=None, name=...) -> an httpx.Client with a fresh token of that role;
    client(None) -> one without a token."""
    made: list[httpx.Client] = []

    def make(role: str | None = "admin", agent: str | None = None, name: str = "") -> httpx.Client:
        headers = {}
        if role is not None:
            token, _ = create_token(redis_url, role, name or role, agent)
            headers["Authorization"] = f"Bearer {token}"
        c = httpx.Client(base_url=server.base_url, headers=headers, timeout=30.0)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def admin(client: Client) -> httpx.Client:
    return client("admin")


SEED = {
    "name": "Seed survey",
    "mode": "ivr",
    "caller_id": "+84281234567",
    "timezone": "Asia/Ho_Chi_Minh",
    "windows": ["10:00-12:00", "15:30-17:30"],
    "country": "VN",
    "max_attempts": 2,
    "exclusions": ["segment in {VIP, GOLD, DIAMOND}"],
    "pacing": {"max_channels": 100, "max_cps": 50},
    "ivr_script": "seed_survey",
    "sms": {"sender": "Operator", "template": "Thank you {name}"},
}


@pytest.fixture
def seed_spec() -> dict[str, object]:
    return {**SEED, "pacing": dict(SEED["pacing"])}  # type: ignore[arg-type]


@pytest.fixture
def contacts_csv(tmp_path: Path) -> Callable[[list[tuple[str, str, str]]], bytes]:
    def make(rows: list[tuple[str, str, str]]) -> bytes:
        return ("phone,name,segment\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode()

    return make


def read_sse(c: httpx.Client, path: str, n: int, *, params: dict[str, str] | None = None,
             timeout: float = 10.0) -> list[dict[str, str]]:
    """The first `n` events of an SSE stream, each as its fields (id, event, data). As in a
    browser, a frame without `data` (the `retry:` hint) dispatches no event."""
    out: list[dict[str, str]] = []
    with c.stream("GET", path, params=params, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            if line == "":
                if "data" in fields:
                    out.append(fields)
                    if len(out) == n:
                        break
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    return out


def read_events(c: httpx.Client, cid: str, n: int, *, since: str = "0", timeout: float = 10.0) -> list[tuple[str, str, dict[str, object]]]:
    """The first `n` SSE events of a campaign from `since`: (id, event, data)."""
    import json

    return [(f.get("id", ""), f.get("event", "message"), json.loads(f["data"]))
            for f in read_sse(c, f"/v1/campaigns/{cid}/events", n, params={"since": since}, timeout=timeout)]

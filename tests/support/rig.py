"""A carrier (sipp) and `dialer serve --trunk` on it with an admin client - and, for the
agent-campaign tests, the agents' phones (sipp, talking with RTP) and the agents in the roster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.auth import create_token
from tests.support.api_server import ApiServer, api_server
from tests.support.sipp import Sipp

Defer = Callable[[Callable[[], object]], None]


@dataclass
class Rig:
    server: ApiServer
    api: httpx.Client
    token: str
    carrier: Sipp
    phones: Sipp | None = None


@contextmanager
def carrier_rig(redis_url: str, tmp_path: Path, defer: Defer, calls: int = 100, timeout_s: float = 140) -> Iterator[Rig]:
    carrier = Sipp("uas_carrier.xml", calls, tmp_path, timeout_s=timeout_s).start()
    defer(carrier.stop)
    token, _ = create_token(redis_url, "admin", "e2e", None)
    with api_server(redis_url, tmp_path / "state", extra=["--trunk", f"127.0.0.1:{carrier.port}"]) as server:
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        defer(api.close)
        yield Rig(server, api, token, carrier)


@contextmanager
def agent_rig(redis_url: str, tmp_path: Path, defer: Defer, agents: list[str],
              talk_ms: int, calls: int = 100, timeout_s: float = 140) -> Iterator[Rig]:
    phones = Sipp("uas_agent.xml", calls, tmp_path, timeout_s=timeout_s, keys={"talk_ms": str(talk_ms)}).start()
    defer(phones.stop)
    with carrier_rig(redis_url, tmp_path, defer, calls, timeout_s) as rig:
        rig.phones = phones
        for a in agents:
            r = rig.api.post("/v1/agents", json={"id": a, "name": a.title(), "sip_uri": f"sip:{a}@127.0.0.1:{phones.port}"})
            assert r.status_code == 201, r.text
        yield rig

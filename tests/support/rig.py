"""A carrier (sipp), agents' phones (sipp, talking with RTP) and `dialer serve --trunk` on them,
with an admin client and the agents in the roster: the setting of the agent-campaign tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.auth import create_token
from tests.support.api_server import ApiServer, api_server
from tests.support.sipp import Sipp


@dataclass
class Rig:
    server: ApiServer
    api: httpx.Client
    token: str
    carrier: Sipp
    phones: Sipp


@contextmanager
def agent_rig(redis_url: str, tmp_path: Path, defer: Callable[[Callable[[], object]], None], agents: list[str],
              talk_ms: int, calls: int = 100, timeout_s: float = 140) -> Iterator[Rig]:
    carrier = Sipp("uas_carrier.xml", calls, tmp_path, timeout_s=timeout_s).start()
    phones = Sipp("uas_agent.xml", calls, tmp_path, timeout_s=timeout_s, keys={"talk_ms": str(talk_ms)}).start()
    defer(carrier.stop)
    defer(phones.stop)
    token, _ = create_token(redis_url, "admin", "e2e", None)
    with api_server(redis_url, tmp_path / "state", extra=["--trunk", f"127.0.0.1:{carrier.port}"]) as server:
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        defer(api.close)
        for a in agents:
            r = api.post("/v1/agents", json={"id": a, "name": a.title(), "sip_uri": f"sip:{a}@127.0.0.1:{phones.port}"})
            assert r.status_code == 201, r.text
        yield Rig(server, api, token, carrier, phones)

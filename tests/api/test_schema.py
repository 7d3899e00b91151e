"""Schemathesis against the running `dialer serve` and its own OpenAPI schema: generated requests,
valid and invalid, to every operation (examples, coverage, fuzzing and stateful phases). No 5xx,
every status code documented, every body and content type as the schema says, 405s naming every
allowed method, unauthenticated calls refused.

One check is left out, `positive_data_acceptance`: some rules are not expressible in JSON Schema
(an IANA time zone name, overlapping calling windows, end after start, a callback in the
future, a campaign or agent that exists), so a schema-valid body may rightly get a 422 or 404.

The two Server-Sent Event streams (`GET .../events`) are left to `test_event_streams_match_schema`:
a stream stays open while its reader is connected, and schemathesis reads a response to its end,
so each generated request would wait for the request timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from api.auth import create_token
from tests.api.conftest import read_sse
from tests.support.api_server import ApiServer


def test_schemathesis_finds_nothing(server: ApiServer, redis_url: str, tmp_path: Path) -> None:
    token, _ = create_token(redis_url, "admin", "schemathesis")
    st = Path(sys.executable).parent / "schemathesis"
    proc = subprocess.run(
        [str(st), "run", server.base_url + "/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance", "--max-examples", "30", "--seed", "1",
         "--exclude-path-regex", "/events$", "--generation-database", "none", "--no-color", "--request-timeout", "30", "--max-failures", "10",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    tail = proc.stdout[-6000:]
    assert proc.returncode == 0, tail + proc.stderr[-2000:]
    # Every operation of the schema was exercised.
    paths = httpx.get(server.base_url + "/openapi.json").json()["paths"]
    operations = sum(len(methods) for path, methods in paths.items() if not path.endswith("/events"))
    assert f"Tested: {operations}" in proc.stdout, tail


def test_event_streams_match_schema(server: ApiServer, redis_url: str, seed_spec: dict[str, object]) -> None:
    """Every frame of both event streams validates against the schema the OpenAPI document gives
    for it, and its `data` is JSON."""
    import json

    import jsonschema_rs

    token, _ = create_token(redis_url, "admin", "sse")
    c = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})
    paths = c.get("/openapi.json").json()["paths"]
    c.post("/v1/campaigns", json={**seed_spec, "id": "sse"}).raise_for_status()
    c.post("/v1/agents", json={"id": "ann", "name": "Ann", "sip_uri": "sip:ann@127.0.0.1"}).raise_for_status()
    c.post("/v1/campaigns/sse/approve").raise_for_status()
    for path, template, n in (("/v1/campaigns/sse/events?since=0", "/v1/campaigns/{cid}/events", 2),
                              ("/v1/agents/ann/events", "/v1/agents/{agent}/events", 1)):
        media = paths[template]["get"]["responses"]["200"]["content"]
        schema = media["text/event-stream"]["schema"]
        frames = read_sse(c, path, n)
        assert len(frames) == n
        for frame in frames:
            jsonschema_rs.validate(schema, frame)
            json.loads(frame["data"])

"""Campaigns on named trunks: `dialer serve --trunk A --named-trunk b=B` dials a campaign whose
`trunk` is "b" through B only (its INVITEs in B's sipp log, none in A's); a campaign naming a
trunk no node has is dialled by none, and its events say why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import create_token
from pacer.cdr import Archive
from tests.api.conftest import read_events
from tests.pacer.test_runtime_e2e import create_running, defer, wait_for  # noqa: F401 (fixture)
from tests.support.api_server import api_server
from tests.support.sipp import Sipp


@pytest.mark.timeout(120)
def test_a_campaign_dials_through_the_trunk_it_names(redis_url: str, tmp_path: Path, defer: Any) -> None:
    own = Sipp("uas_carrier.xml", 100, tmp_path, timeout_s=110, extra=["-trace_msg"]).start()
    other = Sipp("uas_carrier.xml", 100, tmp_path, timeout_s=110, extra=["-trace_msg"]).start()
    defer(own.stop)
    defer(other.stop)
    numbers = [f"0909{i:05d}1" for i in range(5)]  # busy (486)
    token, _ = create_token(redis_url, "admin", "e2e", None)
    extra = ["--trunk", f"127.0.0.1:{own.port}", "--named-trunk", f"b=udp://127.0.0.1:{other.port}"]
    with api_server(redis_url, tmp_path / "state", extra=extra) as server:
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        defer(api.close)
        cid = create_running(api, numbers, trunk="b")
        wait_for("campaign completed", lambda: api.get(f"/v1/campaigns/{cid}").json()["state"] == "completed", 60)
        archive = Archive(tmp_path / "state" / "cdr.sqlite3")
        codes = [x["sip_code"] for n in numbers for x in wait_for("its record", lambda n=n: archive.calls(cid, "+84" + n[1:]), 10)]
        assert codes == [486] * len(numbers)

        # A trunk no node has: nothing is dialled, and the campaign's events say why.
        lost = create_running(api, ["0909999991"], trunk="zz")
        events = read_events(api, lost, 5)
        assert [e for _, e, _ in events] == ["created", "imported", "state", "state", "error"], events
        assert "trunk 'zz' is not configured" in str(events[-1][2]["error"])
        assert api.get(f"/v1/campaigns/{lost}").json()["state"] == "running"
        assert archive.calls(lost, "+84909999991") == []
    assert len(other.invites()) == len(numbers)
    assert own.invites() == []

"""A campaign's pacing caps hold for the whole campaign, however many partitions it has: each
partition's engine dials its share (`pacer.campaign.partition_share`), and the live figures the
API shows are those of all its partitions' pacers added up (`store.campaigns.merge_live`).
Before, every partition's engine had the whole `max_cps` and `max_channels`: a campaign of 4
partitions dialled 4 times its cap, and the API showed one partition's figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dialer_core
import httpx
import pytest

from api.auth import create_token
from pacer.campaign import apply_pacing, live_figures, partition_share
from store.campaigns import CampaignView, State, merge_live
from tests.pacer.test_runtime_e2e import create_running, defer, wait_for  # noqa: F401 (defer is a fixture)
from tests.support.api_server import api_server
from tests.support.sipp import Sipp


@pytest.mark.parametrize("channels, partitions", [(10, 1), (10, 3), (10, 4), (7, 7), (100, 6), (3, 2)])
def test_the_partitions_shares_add_up_to_the_campaigns_caps(channels: int, partitions: int) -> None:
    pacing = {"max_channels": channels, "max_cps": 12.0, "target_abandon_rate": 0.02}
    shares = [partition_share(pacing, p, partitions) for p in range(partitions)]
    assert sum(s["max_channels"] for s in shares) == channels
    assert max(s["max_channels"] for s in shares) - min(s["max_channels"] for s in shares) <= 1
    assert sum(s["max_cps"] for s in shares) == pytest.approx(12.0)
    assert all(s["target_abandon_rate"] == 0.02 for s in shares)  # targets hold for each as they are
    assert partition_share({"max_channels": None, "max_cps": None}, 1, 4) == {"max_channels": None, "max_cps": None}


def test_each_partitions_engine_is_given_its_share() -> None:
    view = CampaignView("c-x", State.RUNNING, 3, {"mode": "ivr", "partitions": 4,
                                                 "pacing": {"max_channels": 10, "max_cps": 8.0}})
    configs = []
    for p in range(4):
        engine = dialer_core.PacingEngine("ivr", max_channels=1)
        assert apply_pacing(engine, view, partition=p)
        configs.append(engine.config())
    assert [c["max_channels"] for c in configs] == [3, 3, 2, 2]
    assert [c["max_cps"] for c in configs] == [2.0] * 4
    assert not apply_pacing(engine, view, partition=3)  # nothing changed


def test_the_live_figures_of_several_pacers_add_up() -> None:
    engines = []
    for calls in (3, 5):
        e = dialer_core.PacingEngine("ivr", max_channels=10)
        for i in range(calls):
            e.call_dialed(f"{calls}-{i}", 1.0)
        engines.append(e)
    now = time.time()
    parts = [{**live_figures(e, cps=c, decisions=d), "at": now - age}
             for e, c, d, age in zip(engines, (1.5, 2.5), (10, 30), (0.5, 0.1))]
    one = merge_live(parts[:1])
    assert one == {**{k: v for k, v in parts[0].items() if k != "at"}, "partitions": 1}  # one pacer: as it wrote them
    both = merge_live(parts)
    assert both["partitions"] == 2
    assert (both["calls_in_progress"], both["calls_ringing"], both["dialed"]) == (8, 8, 8)
    assert (both["cps"], both["decisions"]) == (4.0, 40)
    assert both["abandon_rate"] == both["window_abandon_rate"] == 0.0
    # Answers and abandons add up, and the rate is theirs, not an average of rates.
    a = {**parts[0], "window_live_answers": 90, "window_abandons": 0, "window_abandon_rate": 0.0}
    b = {**parts[1], "window_live_answers": 10, "window_abandons": 3, "window_abandon_rate": 0.3}
    assert merge_live([a, b])["abandon_rate"] == pytest.approx(0.03)


@pytest.mark.timeout(120)
def test_a_campaign_of_four_partitions_dials_at_its_own_max_cps(redis_url: str, tmp_path: Path, defer: Any) -> None:
    """Judged by the carrier's trace: 60 busy numbers (each call ends at once), 4 partitions,
    max_cps 4, one node allowed 100 calls/s. Before the shares, each partition dialled 4 calls/s
    and the 60 calls left in about 4 s."""
    numbers = [f"0906{i:05d}1" for i in range(60)]
    sipp = Sipp("uas_carrier.xml", 1000, tmp_path, timeout_s=110, extra=["-trace_msg"]).start()
    defer(sipp.stop)
    token, _ = create_token(redis_url, "admin", "shares", None)
    with api_server(redis_url, tmp_path / "a", extra=["--trunk", f"127.0.0.1:{sipp.port}", "--cps", "100"]) as a:
        api = httpx.Client(base_url=a.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        defer(api.close)
        cid = create_running(api, numbers, partitions=4, pacing={"max_channels": 40, "max_cps": 4})
        seen = []

        def completed() -> bool:
            s = api.get(f"/v1/campaigns/{cid}/stats").json()
            if s["live"]:
                seen.append(s["live"]["partitions"])
            return bool(s["state"] == "completed")

        wait_for("campaign completed", completed, 90)
        invites = sorted(sipp.invites())
        assert len(invites) == 60
        # A token bucket of rate r and depth b lets through at most b + r*t in t seconds: four
        # partitions of 1 call/s, each holding at most one token.
        worst = max(sum(1 for t in invites if t0 <= t < t0 + 5.0) for t0 in invites)
        rate = (len(invites) - 1) / (invites[-1] - invites[0])
        print(f"\n60 calls in {invites[-1] - invites[0]:.1f} s: {rate:.2f} calls/s on average, at most {worst} "
              f"in 5 s (max_cps 4, 4 partitions); pacers reporting: {max(seen, default=0)}")
        assert worst <= 4 * 5 + 4, worst
        assert rate <= 4.4, rate
        assert max(seen, default=0) == 4  # the live figures are the four pacers'

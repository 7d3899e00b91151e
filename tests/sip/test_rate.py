"""Trunk rate control: CPS token bucket, channel cap, 503 Retry-After (sans-I/O, then on sipp)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import Outcome
from sip_gateway.rate import RateLimit
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp


def admitted_times(limit: RateLimit, calls: int) -> list[float]:
    now, times = 0.0, []
    while len(times) < calls:
        again = limit.admit(now)
        if again is None:
            times.append(now)
        else:
            now = again
    return times


def test_token_bucket_spaces_calls_at_the_rate_after_a_one_second_burst() -> None:
    times = admitted_times(RateLimit(cps=10.0), 30)
    assert times[:10] == [0.0] * 10
    assert times[-1] == pytest.approx(2.0)
    assert all(b - a == pytest.approx(0.1) for a, b in zip(times[10:], times[11:]))


def test_channel_cap_and_release() -> None:
    limit = RateLimit(channels=2)
    assert limit.admit(0.0) is None and limit.admit(0.0) is None
    assert limit.admit(0.0) is not None
    limit.release()
    assert limit.admit(0.1) is None


@pytest.mark.parametrize(("header", "pause"), [("30", 30.0), ("5 (busy);duration=60", 5.0), (None, 1.0), ("junk", 1.0), ("99999", 300.0)])
def test_503_pauses_new_calls_for_its_retry_after(header: str | None, pause: float) -> None:
    limit = RateLimit()
    limit.overloaded(10.0, header)
    assert limit.admit(10.0 + pause - 0.01) == 10.0 + pause
    assert limit.admit(10.0 + pause) is None


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="cps"):
        RateLimit(cps=0)
    with pytest.raises(ValueError, match="channels"):
        RateLimit(channels=0)


def test_a_503_from_sipp_holds_the_next_call_for_its_retry_after(tmp_path: Path) -> None:
    sipp = Sipp("uas_final.xml", 2, tmp_path, {"code": "503", "reason": "Service Unavailable", "extra": "Retry-After: 1"}).start()

    async def main() -> list:  # type: ignore[type-arg]
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        try:
            return [await uac.call("8490"), await uac.call("8491")]
        finally:
            uac.close()

    first, second = uvloop.run(main())
    assert first.outcome is Outcome.TRUNK_FAILURE and first.code == 503
    assert second.dialed_at - first.ended_at >= 0.99, "the second call waited out the Retry-After"
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()


def test_cps_limit_on_a_real_trunk(tmp_path: Path) -> None:
    sipp = Sipp("uas_final.xml", 12, tmp_path, {"code": "486", "reason": "Busy Here"}).start()

    async def main() -> list:  # type: ignore[type-arg]
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)), RateLimit(cps=5.0))
        try:
            return list(await asyncio.gather(*(uac.call(f"849{i}") for i in range(12))))
        finally:
            uac.close()

    results = uvloop.run(main())
    starts = sorted(r.dialed_at for r in results)
    assert starts[-1] - starts[0] >= 1.39, "5 at once, then one every 0.2 s"
    assert all(r.outcome is Outcome.BUSY for r in results)
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()

"""The UAC against sipp as the carrier: every call gets the right outcome, every final response
is ACKed (sipp counts a call as failed otherwise, and exits non-zero)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import CallResult, Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp


@pytest.fixture
def carrier(tmp_path: Path) -> Iterator[list[Sipp]]:
    started: list[Sipp] = []
    yield started
    for s in started:
        s.stop()


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], loop: str) -> T:
    """Run on the stdlib loop or on uvloop (what the service uses)."""
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def start(carrier: list[Sipp], tmp_path: Path, scenario: str, calls: int = 1, **keys: str) -> Sipp:
    s = Sipp(scenario, calls, tmp_path, keys).start()
    carrier.append(s)
    return s


async def place(sipp: Sipp, number: str, hold_s: float | None = None, n: int = 1) -> list:  # type: ignore[type-arg]
    uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
    try:
        return list(await asyncio.gather(*(uac.call(f"{number}{i}", hold_s) for i in range(n))))
    finally:
        uac.close()


@pytest.mark.parametrize(
    ("code", "reason", "outcome"),
    [
        ("486", "Busy Here", Outcome.BUSY),
        ("600", "Busy Everywhere", Outcome.BUSY),
        ("404", "Not Found", Outcome.INVALID_NUMBER),
        ("484", "Address Incomplete", Outcome.INVALID_NUMBER),
        ("403", "Forbidden", Outcome.REJECTED),
        ("603", "Decline", Outcome.REJECTED),
        ("480", "Temporarily Unavailable", Outcome.NO_ANSWER),
        ("503", "Service Unavailable", Outcome.TRUNK_FAILURE),
    ],
)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_final_responses_map_to_outcomes_and_are_acked(
    carrier: list[Sipp], tmp_path: Path, code: str, reason: str, outcome: Outcome, loop: str
) -> None:
    sipp = start(carrier, tmp_path, "uas_final.xml", calls=3, code=code, reason=reason)
    results = run(place(sipp, "84901", n=3), loop)
    for r in results:
        assert r.outcome is outcome and r.code == int(code), r
        assert r.ringing_at is not None and r.ended_at is not None and r.answered_at is None
        assert r.dialed_at <= r.ringing_at <= r.ended_at
    assert sipp.wait() == 0, sipp.errors()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_answered_call_is_acked_and_hung_up_with_bye(carrier: list[Sipp], tmp_path: Path, loop: str) -> None:
    sipp = start(carrier, tmp_path, "uas", calls=5)
    results = run(place(sipp, "84902", hold_s=0.2, n=5), loop)
    for r in results:
        assert r.outcome is Outcome.ANSWERED and r.code == 200, r
        assert r.answered_at is not None and r.ended_at is not None
        assert r.ended_at - r.answered_at >= 0.19  # uvloop keeps time in milliseconds
    assert sipp.wait() == 0, sipp.errors()


def test_ring_timeout_cancels_and_a_200_crossing_the_cancel_is_acked_then_hung_up(carrier: list[Sipp], tmp_path: Path) -> None:
    ringout = start(carrier, tmp_path, "uas_ringout.xml")
    race = start(carrier, tmp_path, "uas_cancel_race.xml")

    async def both() -> tuple:  # type: ignore[type-arg]
        return await asyncio.gather(place(ringout, "84903"), place(race, "84904"))

    (r1,), (r2,) = run(both(), "uvloop")
    assert r1.outcome is Outcome.NO_ANSWER and r1.code == 487, r1
    assert r1.ended_at - r1.dialed_at >= 25.0, "the default ring timeout"
    assert r2.outcome is Outcome.ANSWERED_THEN_DROPPED and r2.code == 200, r2
    assert r2.answered_at is not None
    assert ringout.wait() == 0, ringout.errors()
    assert race.wait() == 0, race.errors()


def test_requests_from_the_far_end_in_the_dialog_are_answered(tmp_path: Path) -> None:
    """A session-timer re-INVITE gets our SDP again and its timer accepted; UPDATE and OPTIONS a
    200; a NOTIFY we do not handle a 501. The call stays up until we hang up."""
    sipp = Sipp("uas_reinvite.xml", 2, tmp_path).start()

    async def main() -> list[CallResult]:
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        try:
            return list(await asyncio.gather(*(uac.call(n, hold_s=2.0) for n in ("84901", "84902"))))
        finally:
            uac.close()

    for r in uvloop.run(main()):
        assert r.outcome is Outcome.ANSWERED and r.ended_at is not None and r.answered_at is not None
        assert r.ended_at - r.answered_at >= 2.0
    assert sipp.wait() == 0, sipp.errors()


def test_a_forked_200_is_acked_and_hung_up_and_the_first_dialog_goes_on(tmp_path: Path) -> None:
    """Two branches of a fork answer (To tags forkA, forkB): both 200s are ACKed, forkB gets a BYE
    at once (RFC 3261 13.2.2.4), forkA stays up until we hang up. sipp checks each BYE's To tag."""
    sipp = Sipp("uas_forked.xml", 2, tmp_path).start()

    async def main() -> tuple[list[CallResult], int]:
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        try:
            results = await asyncio.gather(*(uac.call(n, hold_s=0.5) for n in ("84901", "84902")))
            return list(results), uac.counters.forks
        finally:
            uac.close()

    results, forks = uvloop.run(main())
    for r in results:
        assert r.outcome is Outcome.ANSWERED and r.answered_at is not None and r.ended_at is not None, r
        assert r.ended_at - r.answered_at >= 0.49
    assert sipp.wait() == 0, sipp.errors()
    assert forks == 2

"""One sipp carrier, where the dialled number's last digit picks what the subscriber does: a mix
of calls placed at once each gets its own outcome, and every final response is ACKed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvloop

from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp

BY_DIGIT = {
    "0": (Outcome.ANSWERED, 200),
    "1": (Outcome.BUSY, 486),
    "2": (Outcome.NO_ANSWER, 487),
    "3": (Outcome.INVALID_NUMBER, 404),
    "5": (Outcome.REJECTED, 603),
    "6": (Outcome.NO_ANSWER, 480),
    "7": (Outcome.ANSWERED, 200),
}


def test_each_number_gets_its_outcome(tmp_path: Path) -> None:
    numbers = [f"8490{i}{d}" for i in range(3) for d in BY_DIGIT]
    sipp = Sipp("uas_carrier.xml", len(numbers), tmp_path).start()

    async def main() -> list:  # type: ignore[type-arg]
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        try:
            return list(await asyncio.gather(*(uac.call(n, hold_s=0.1) for n in numbers)))
        finally:
            uac.close()

    for n, r in zip(numbers, uvloop.run(main())):
        assert (r.outcome, r.code) == BY_DIGIT[n[-1]], (n, r)
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()

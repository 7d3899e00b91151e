"""The UAC over TCP (one connection to the trunk) against sipp in TCP mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvloop

from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp


def calls(sipp: Sipp, numbers: list[str], hold_s: float | None = 0.05) -> list:  # type: ignore[type-arg]
    async def main() -> list:  # type: ignore[type-arg]
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0), transport="TCP"))
        try:
            return list(await asyncio.gather(*(uac.call(n, hold_s) for n in numbers)))
        finally:
            uac.close()

    return uvloop.run(main())


def test_mixed_outcomes_over_tcp(tmp_path: Path) -> None:
    numbers = [f"8490{i}{d}" for i in range(5) for d in "0137"]
    sipp = Sipp("uas_carrier.xml", len(numbers), tmp_path, transport="t1").start()
    expected = {"0": Outcome.ANSWERED, "1": Outcome.BUSY, "3": Outcome.INVALID_NUMBER, "7": Outcome.ANSWERED}
    for n, r in zip(numbers, calls(sipp, numbers)):
        assert r.outcome is expected[n[-1]], (n, r)
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()


def test_the_trunk_closing_the_connection_fails_the_calls_on_it(tmp_path: Path) -> None:
    sipp = Sipp("uas_carrier.xml", 10, tmp_path, transport="t1").start()

    async def main() -> list:  # type: ignore[type-arg]
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0), transport="TCP"))
        try:
            pending = [asyncio.ensure_future(uac.call(f"8490{i}2", None)) for i in range(3)]  # ...2: rings out
            deadline = asyncio.get_running_loop().time() + 10
            while len(uac.calls) < 3 or not all(c.result.ringing_at for c in uac.calls.values()):  # all ringing
                assert asyncio.get_running_loop().time() < deadline, "the calls did not ring within 10 s"
                await asyncio.sleep(0.01)
            sipp.stop()  # the carrier goes away mid-ring
            return list(await asyncio.wait_for(asyncio.gather(*pending), 10))
        finally:
            uac.close()

    for r in uvloop.run(main()):
        assert r.outcome is Outcome.TRUNK_FAILURE and "connection" in r.reason, r


def test_mixed_outcomes_over_tls(tmp_path: Path) -> None:
    """TLS to the trunk (stunnel terminating it in front of sipp's TCP), the certificate checked."""
    import ssl

    import pytest

    from tests.support.tls import stunnel

    numbers = [f"8490{i}{d}" for i in range(3) for d in "0137"]
    sipp = Sipp("uas_carrier.xml", len(numbers), tmp_path, transport="t1").start()
    expected = {"0": Outcome.ANSWERED, "1": Outcome.BUSY, "3": Outcome.INVALID_NUMBER, "7": Outcome.ANSWERED}
    with stunnel(tmp_path, sipp.port) as (port, ca):
        async def main() -> list:  # type: ignore[type-arg]
            def cfg(name: str) -> TrunkConfig:
                return TrunkConfig(trunk=("127.0.0.1", port), local=("127.0.0.1", 0), transport="TLS", tls_ca=str(ca),
                                   tls_server_name=name)

            with pytest.raises(ssl.SSLCertVerificationError):  # a name the certificate does not carry
                await Uac.open(cfg("other.test"))
            uac = await Uac.open(cfg("carrier.test"))
            try:
                return list(await asyncio.gather(*(uac.call(n, 0.05) for n in numbers)))
            finally:
                uac.close()
                await asyncio.sleep(0.1)  # let the TLS connection close inside the loop

        for n, r in zip(numbers, uvloop.run(main())):
            assert r.outcome is expected[n[-1]], (n, r)
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()

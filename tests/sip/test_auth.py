"""Digest authentication: the RFC's own example, then a sipp trunk that challenges."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvloop

from sip_gateway.auth import authorization, parse_challenge
from sip_gateway.call import TrunkConfig
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp


def test_rfc_2617_example() -> None:
    challenge = 'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    value = authorization(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value and "qop=auth" in value and "nc=00000001" in value


def test_sha256_and_refusals() -> None:
    value = authorization('Digest realm="r", nonce="n", algorithm=SHA-256', "INVITE", "sip:1@h", "u", "p")
    assert "algorithm=SHA-256" in value and len(value.split('response="')[1].split('"')[0]) == 64
    with pytest.raises(ValueError, match="not supported"):
        authorization('Digest realm="r", nonce="n", algorithm=SHA-512-256', "INVITE", "sip:1@h", "u", "p")
    with pytest.raises(ValueError, match="not a Digest"):
        parse_challenge('Basic realm="r"')


@pytest.mark.parametrize(("password", "outcome", "code"), [("secret", Outcome.ANSWERED, 200), ("wrong", Outcome.REJECTED, 403)])
def test_a_challenging_trunk(tmp_path: Path, password: str, outcome: Outcome, code: int) -> None:
    sipp = Sipp("uas_auth.xml", 2, tmp_path, {"password": "secret"}).start()

    async def main() -> list:  # type: ignore[type-arg]
        cfg = TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0), username="dialer", password=password)
        uac = await Uac.open(cfg)
        try:
            return [await uac.call("84901", hold_s=0.05), await uac.call("84902", hold_s=0.05)]
        finally:
            uac.close()

    for r in uvloop.run(main()):
        assert r.outcome is outcome and r.code == code, r
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()


def test_no_credentials_is_a_rejection(tmp_path: Path) -> None:
    sipp = Sipp("uas_final.xml", 1, tmp_path, {"code": "407", "reason": "Proxy Authentication Required"}).start()

    async def main():  # type: ignore[no-untyped-def]
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        try:
            return await uac.call("84903")
        finally:
            uac.close()

    r = uvloop.run(main())
    assert r.outcome is Outcome.REJECTED and r.code == 407
    assert sipp.wait() == 0, sipp.errors()
    sipp.stop()

"""The trunk's Digest credentials are never offered to an agent's phone: a phone (or any
`sip_uri` a supervisor enters) that answers 407 gets no Authorization to crack for the carrier's
password (toll fraud). Before, the agent leg was placed with the trunk's whole configuration."""

from __future__ import annotations

import asyncio

import uvloop

from sip_gateway.agent import agent_leg_config
from sip_gateway.call import TrunkConfig
from sip_gateway.message import Request
from sip_gateway.uac import Uac
from tests.security.test_sip_numbers import Carrier, response

CHALLENGE = 'Proxy-Authenticate: Digest realm="agents", nonce="abc123", algorithm=MD5, qop="auth"'


def test_a_phone_answering_407_gets_no_digest_of_the_trunk_password() -> None:
    invites: list[Request] = []

    def phone(req: Request) -> list[str]:
        invites.append(req)
        return [response(req, "407 Proxy Authentication Required", CHALLENGE)]

    async def main() -> tuple[int | None, int | None]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: Carrier(phone), local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        # The trunk itself challenges too: the same UAC answers its 407 with the credentials.
        trunk = TrunkConfig(trunk=("127.0.0.1", 9), local=("127.0.0.1", 0), username="dialer", password="carrier-secret")
        uac = await Uac.open(trunk)
        try:
            to_trunk = await asyncio.wait_for(uac.call("84901000001", cfg=TrunkConfig(
                trunk=("127.0.0.1", port), local=trunk.local, username="dialer", password="carrier-secret")), 10)
            invites_to_trunk = len(invites)
            leg = agent_leg_config(uac.cfg, ("127.0.0.1", port), "+84901000001")
            to_phone = await asyncio.wait_for(uac.call("agent1", cfg=leg, limited=False), 10)
            assert len(invites) == invites_to_trunk + 1  # one INVITE to the phone, never a second with credentials
            return to_trunk.code, to_phone.code
        finally:
            uac.close()
            transport.close()

    trunk_code, phone_code = uvloop.run(main())
    # The trunk's own challenge is answered (the same code path is live) ...
    assert any(r.get("Proxy-Authorization") for r in invites[:2]), "the trunk's 407 should be answered"
    # ... the phone's is not: no INVITE to it carries credentials.
    to_phone = [r for r in invites if "agent1@" in r.uri]
    assert to_phone and not any(r.get("Proxy-Authorization") or r.get("Authorization") for r in to_phone)
    assert phone_code == 407

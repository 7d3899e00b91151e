"""Agent connect (B2BUA): a sipp carrier's subscriber answers, the gateway calls a sipp agent
phone and bridges the two in the media engine; or, with no agent in time, plays the
identification message and hangs up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dialer_core
import pytest
import uvloop

from sip_gateway.agent import Agent, AgentDialer, AgentOutcome
from sip_gateway.call import TrunkConfig
from sip_gateway.media import MediaHub
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp

ABANDON_S = 0.6


def run(carrier: Sipp, agent: Agent | None, numbers: list[str]) -> tuple[list[AgentOutcome], dialer_core.MediaStats]:
    async def main() -> tuple[list[AgentOutcome], dialer_core.MediaStats]:
        engine = dialer_core.MediaEngine()
        engine.add_prompt("abandon", b"\x00\x08" * int(8000 * ABANDON_S))
        hub = MediaHub(engine)
        uac = await Uac.open(TrunkConfig(trunk=carrier.addr, local=("127.0.0.1", 0)))
        try:
            dialer = AgentDialer(uac, hub, abandon_prompt="abandon", connect_limit_s=2.0)

            async def reserve() -> Agent | None:
                return agent

            out = list(await asyncio.gather(*(dialer.call(n, reserve) for n in numbers)))
            return out, engine.stats()
        finally:
            uac.close()
            hub.shutdown()

    return uvloop.run(main())


def test_an_answered_call_reaches_the_agent_and_audio_flows(tmp_path: Path) -> None:
    carrier = Sipp("uas_carrier.xml", 3, tmp_path).start()
    phone = Sipp("uas_agent.xml", 3, tmp_path, keys={"talk_ms": "2000"}).start()
    outcomes, stats = run(carrier, Agent("a1", f"sip:agent1@127.0.0.1:{phone.port}"), ["849017", "849027", "849037"])
    for o in outcomes:
        c = o.customer
        assert c.outcome is Outcome.ANSWERED and c.answered_at is not None and o.connected_at is not None
        assert o.connected_at - c.answered_at < 2.0, "the customer hears the agent within 2 s of answering"
        assert o.agent_call is not None and o.agent_call.outcome is Outcome.ANSWERED
        assert (o.abandoned, o.ended_by) == (False, "agent")  # the agent hung up; the customer was hung up too
        assert c.ended_at is not None and 1.5 < c.ended_at - o.connected_at < 4.0
    # The agent's voice (sipp's PCMA pcap) went out to the customer: ~65 frames a call in 2 s.
    assert stats["frames_relayed"] >= 3 * 50, stats
    assert carrier.wait() == 0, carrier.errors()
    assert phone.wait() == 0, phone.errors()


def test_the_customers_voice_reaches_the_agent(tmp_path: Path) -> None:
    """The other direction: a customer who talks (sipp's PCMA pcap, then BYE) and an agent's
    phone that sends nothing - every relayed frame is the customer's."""
    customers = Sipp("uas_agent.xml", 2, tmp_path, keys={"talk_ms": "2000"}).start()
    phone = Sipp("uas_answer.xml", 2, tmp_path).start()
    outcomes, stats = run(customers, Agent("a1", f"sip:agent1@127.0.0.1:{phone.port}"), ["849011", "849021"])
    for o in outcomes:
        assert o.connected_at is not None and (o.abandoned, o.ended_by) == (False, "customer"), o
    assert stats["frames_relayed"] >= 2 * 50, stats
    assert customers.wait() == 0, customers.errors()
    assert phone.wait() == 0, phone.errors()


def test_no_agent_free_plays_the_identification_message_then_hangs_up(tmp_path: Path) -> None:
    carrier = Sipp("uas_carrier.xml", 2, tmp_path).start()
    outcomes, stats = run(carrier, None, ["849017", "849027"])
    for o in outcomes:
        c = o.customer
        assert (o.abandoned, o.ended_by, o.connected_at, o.agent_call) == (True, "abandon", None, None)
        assert c.answered_at is not None and c.ended_at is not None
        assert ABANDON_S - 0.05 <= c.ended_at - c.answered_at < 2.0 + ABANDON_S + 1.0  # the last frame leaves 20 ms early
    assert carrier.wait() == 0, carrier.errors()


def test_an_agent_phone_that_does_not_answer_in_time_is_cancelled_and_the_call_abandoned(tmp_path: Path) -> None:
    carrier = Sipp("uas_carrier.xml", 1, tmp_path).start()
    phone = Sipp("uas_ringout.xml", 1, tmp_path).start()
    outcomes, _ = run(carrier, Agent("a1", f"sip:agent1@127.0.0.1:{phone.port}"), ["849017"])
    o = outcomes[0]
    assert (o.abandoned, o.ended_by, o.connected_at) == (True, "abandon", None)
    assert o.agent_call is not None and o.agent_call.outcome is Outcome.NO_ANSWER and o.agent_call.code == 487
    assert carrier.wait() == 0, carrier.errors()
    assert phone.wait() == 0, phone.errors()


@pytest.mark.parametrize(("uri", "want"), [
    ("sip:agent1@10.0.0.20", ("agent1", ("10.0.0.20", 5060))),
    ("<sip:7001@pbx.local:5080;transport=udp>", ("7001", ("pbx.local", 5080))),
    ("sip:a@[::1]:5070", ("a", ("::1", 5070))),
])
def test_agent_uris(uri: str, want: tuple[str, tuple[str, int]]) -> None:
    assert Agent("x", uri).address() == want


@pytest.mark.parametrize("uri", ["tel:+8490", "sip:10.0.0.1", "sip:a@host:port", "sip:@host"])
def test_bad_agent_uris(uri: str) -> None:
    with pytest.raises(ValueError, match="not a sip:user@host"):
        Agent("x", uri).address()

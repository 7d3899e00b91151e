"""This node's SIP side: the trunks it dials through (`GatewaySettings`, `NamedTrunk`) and the
`Gateway` that holds their UACs, the media engine and the prompts every campaign it dials shares."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import dialer_core

from sip_gateway import prompts
from sip_gateway.call import TrunkConfig
from sip_gateway.ivr.script import Prompt, Script
from sip_gateway.media import MediaHub
from sip_gateway.rate import RateLimit
from sip_gateway.uac import Uac


@dataclass(frozen=True)
class NamedTrunk:
    """A trunk a campaign can name (`trunk` in its settings) instead of the node's own."""

    name: str
    address: tuple[str, int]
    transport: str = "UDP"
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class GatewaySettings:
    """Where calls go and how this node places them."""

    trunk: tuple[str, int]
    transport: str = "UDP"
    sip_bind: tuple[str, int] = ("127.0.0.1", 0)
    rtp_bind: str = "127.0.0.1"
    rtp_ports: tuple[int, int] | None = None
    username: str | None = None
    password: str | None = None
    #: TLS to the trunk: the CA file that verifies its certificate, and the name it must carry.
    tls_ca: str | None = None
    tls_server_name: str | None = None
    #: This node's ceiling over all campaigns (each campaign's pacing caps apply too).
    cps: float = 100.0
    channels: int = 2000
    #: Hang up an IVR call that has sent no RTP for this long.
    inactivity_s: float = 30.0
    #: Hang up an IVR call that lasts longer than this.
    max_call_s: float = 300.0
    prompt_cache: Path = Path(".dialer/prompts")
    #: A claim's lease past the ring timeout, renewed while its calls go on: how soon a dead
    #: node's contacts are dialled again by another.
    claim_lease_s: float = 45.0
    #: A partition's lease (renewed every scan, each second): a dead node's partitions are taken
    #: over this long after its last scan (`dialer serve --partition-lease`).
    partition_lease_s: float = 6.0
    #: Dial marks (crash consistency: `pacer/orphans.py`); off only to measure what they cost
    #: (`dialer serve --no-dial-marks`).
    dial_marks: bool = True
    #: More trunks, by name; each with its own SIP transport and its own cps and channel caps
    #: (`cps`, `channels`).
    named: tuple[NamedTrunk, ...] = ()


class Gateway:
    """This node's SIP UAC and media engine, shared by every campaign it dials."""

    def __init__(self, settings: GatewaySettings, uac: Uac, hub: MediaHub, named: dict[str, Uac] | None = None) -> None:
        self.settings = settings
        self.uac = uac
        #: The named trunks' UACs.
        self.named = named or {}
        self.hub = hub
        self.scripts: dict[str, Script] = {}
        self.abandon_texts: dict[str, tuple[str, str]] = {}

    @classmethod
    async def open(cls, s: GatewaySettings) -> Gateway:
        engine = dialer_core.MediaEngine(bind=s.rtp_bind, inactivity_s=s.inactivity_s, ports=s.rtp_ports)
        hub = MediaHub(engine)
        cfg = TrunkConfig(trunk=s.trunk, local=s.sip_bind, transport=s.transport, username=s.username,
                          password=s.password, tls_ca=s.tls_ca, tls_server_name=s.tls_server_name)
        uac = await Uac.open(cfg, RateLimit(cps=s.cps, channels=s.channels))
        named: dict[str, Uac] = {}
        try:
            for t in s.named:
                named[t.name] = await Uac.open(
                    dataclasses.replace(cfg, trunk=t.address, transport=t.transport, username=t.username, password=t.password),
                    RateLimit(cps=s.cps, channels=s.channels))
        except BaseException:
            for u in (uac, *named.values()):
                u.close()
            hub.shutdown()
            raise
        return cls(s, uac, hub, named)

    def uac_for(self, trunk: str | None) -> Uac | None:
        """The UAC of a campaign's trunk: the node's own when it names none (None: this node
        has no trunk of that name)."""
        return self.uac if not trunk else self.named.get(trunk)

    async def script(self, name: str) -> Script:
        """A shipped script, its prompts rendered (once) and registered with the media engine."""
        if name not in self.scripts:
            script = Script.shipped(name)  # parsed at start-up
            await prompts.load(script, self.hub.engine, self.settings.prompt_cache)
            self.scripts[name] = script
        return self.scripts[name]

    async def abandon_prompt(self, cid: str, text: str, lang: str) -> str:
        """A campaign's identification message (agent modes), rendered and registered."""
        name = f"abandon/{cid}"
        key = (text, lang)
        if self.abandon_texts.get(name) != key:
            pcm = await prompts.render(Prompt(text=text, lang=lang), Path("."), self.settings.prompt_cache)
            self.hub.engine.add_prompt(name, pcm)
            self.abandon_texts[name] = key
        return name

    def hangup_all(self) -> int:
        """End every call of every trunk now (their outcomes are recorded as they end)."""
        return sum(u.hangup_all() for u in (self.uac, *self.named.values()))

    def close(self) -> None:
        for u in (self.uac, *self.named.values()):
            u.close()
        self.hub.shutdown()

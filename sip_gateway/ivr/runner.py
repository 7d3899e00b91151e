"""Runs an IVR script on answered calls: the UAC places the call, the media engine plays the
prompts and hears the digits (RFC 4733; SIP INFO comes through the UAC), `IvrSession` decides.

`IvrRunner.call(number)` returns once the call has ended, with the SIP outcome, the script's
results, every key pressed and whether the script asked for the SMS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sip_gateway import sdp
from sip_gateway.call import CallIds, OutboundCall, TrunkConfig
from sip_gateway.ivr.script import Action, CollectUntil, Hangup, IvrSession, Play, Script, SendSms
from sip_gateway.media import MediaHub
from sip_gateway.outcomes import CallResult
from sip_gateway.prompts import prompt_name
from sip_gateway.uac import CallHooks, Uac


@dataclass
class IvrOutcome:
    call: CallResult
    #: The script's results (e.g. {"agreed": "yes"}); empty when the script never ran.
    results: dict[str, str] = field(default_factory=dict)
    #: Every DTMF key pressed, in order.
    pressed: str = ""
    #: The script reached a node with `sms = true`.
    sms: bool = False
    #: Who ended an answered call: "script" (its end), "far_end" (BYE), "inactivity" (no RTP),
    #: "no_media" (an answer without usable audio), "max_duration"; "" if not answered.
    ended_by: str = ""


class _IvrCall:
    def __init__(self, runner: IvrRunner, on_answered: Callable[[], None] | None,
                 on_sms: Callable[[], None] | None = None) -> None:
        self.runner = runner
        self.on_answered = on_answered
        self.on_sms = on_sms
        self.session = IvrSession(runner.script)
        self.media = 0
        self.call: OutboundCall | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.guard: asyncio.TimerHandle | None = None
        self.sms = False
        self.ended_by = ""

    # --- from the UAC ----------------------------------------------------------------------

    def answered(self, call: OutboundCall) -> None:
        self.call = call
        if self.on_answered is not None:
            self.on_answered()
        loop = self.runner.loop
        self.guard = loop.call_later(self.runner.max_call_s, self._hangup, "max_duration")
        m = sdp.answer_media(call.answer_sdp)
        if m is None:
            self._hangup("no_media")
            return
        self.runner.hub.engine.connect(self.media, m.host, m.port, m.payload_type, m.dtmf_payload_type)
        self._apply(self.session.start(loop.time()))

    def info_digit(self, call_id: str, key: str) -> None:
        self._apply(self.session.digit(key, self.runner.loop.time()))

    # --- from the media engine ---------------------------------------------------------------

    def media_event(self, kind: str, detail: str) -> None:
        now = self.runner.loop.time()
        if kind == "played":
            prefix = prompt_name(self.runner.script, "")
            if detail.startswith(prefix):
                self._apply(self.session.played(detail[len(prefix):], now))
        elif kind == "digit":
            self._apply(self.session.digit(detail, now))
        elif kind == "inactive":
            self._hangup("inactivity")

    # --- internals -------------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        plays = []
        for a in actions:
            if isinstance(a, Play):
                plays.append(prompt_name(self.runner.script, a.prompt))
            elif isinstance(a, CollectUntil):
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = self.runner.loop.call_at(a.deadline, self._on_timer)
            elif isinstance(a, SendSms):
                if not self.sms and self.on_sms is not None:
                    self.on_sms()
                self.sms = True
            elif isinstance(a, Hangup):
                self._hangup("script")
        if plays:
            self.runner.hub.engine.play(self.media, plays)

    def _on_timer(self) -> None:
        self.timer = None
        self._apply(self.session.timer(self.runner.loop.time()))

    def _hangup(self, why: str) -> None:
        if not self.ended_by:
            self.ended_by = why
        if self.call is not None:
            self.runner.uac.hangup(self.call.call_id)

    def finish(self) -> None:
        for h in (self.timer, self.guard):
            if h is not None:
                h.cancel()
        if self.call is not None and not self.ended_by:
            self.ended_by = "far_end"


class IvrRunner:
    """Places calls that run `script` once answered. The script's prompts must be registered
    with the hub's engine first (`sip_gateway.prompts.load`)."""

    def __init__(self, uac: Uac, hub: MediaHub, script: Script, max_call_s: float = 300.0) -> None:
        missing = [p for p in script.prompts if not hub.engine.has_prompt(prompt_name(script, p))]
        if missing:
            raise ValueError(f"script {script.name!r}: prompts {missing} are not loaded into the media engine")
        self.uac, self.hub, self.script = uac, hub, script
        self.max_call_s = max_call_s
        self.loop = asyncio.get_running_loop()

    async def call(self, number: str, cfg: TrunkConfig | None = None,
                   on_answered: Callable[[], None] | None = None, admit: Callable[[], bool] | None = None,
                   on_sms: Callable[[], None] | None = None, ids: CallIds | None = None) -> IvrOutcome:
        """Dial `number` (with `cfg`'s caller ID and ring timeout, the UAC's by default) and run
        the script if answered; `on_answered` is called at the answer, `on_sms` when the script
        first reaches a node with `sms = true`. `admit` is asked right before the INVITE leaves
        (`NotPlaced` if it says no). `ids`: the call's derived ids (`CallIds`), random by default."""
        ivr = _IvrCall(self, on_answered, on_sms)
        ivr.media, port = self.hub.open(ivr)
        try:
            result = await self.uac.call(
                number, media=(self.hub.engine.bind, port), hooks=CallHooks(answered=ivr.answered, dtmf=ivr.info_digit),
                cfg=cfg, admit=admit, ids=ids,
            )
        finally:
            self.hub.close(ivr.media)
            ivr.finish()
        s = ivr.session
        return IvrOutcome(call=result, results=dict(s.results), pressed=s.pressed, sms=ivr.sms, ended_by=ivr.ended_by)

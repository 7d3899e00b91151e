"""What happens when a call ends, a customer is handed to an agent, or an agent sets a
disposition: pure functions from facts to a `Plan` (pacer/actions.py), tested without I/O.

Nothing here reads a clock, a socket or Redis: the caller passes what happened (`CallFacts`,
the call's record, the campaign's settings) and the time (`Clock`: the monotonic time the facts'
times are in, and the wall time for the CDR); the runtime and the API only execute the plan.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from typing import Any

import dialer_core

from store.cdr import CallRecord

from pacer.actions import CloseCall, EngineEvent, Plan, SmsRequest


@dataclass(frozen=True)
class Clock:
    """The moment a transition happens: `mono` is the clock the call's times are in
    (the event loop's), `wall` the epoch time the CDR is written in."""

    mono: float
    wall: float

    def to_wall(self, t: float | None) -> float | None:
        return None if t is None else t + (self.wall - self.mono)


@dataclass(frozen=True)
class Contact:
    """The claimed contact a call was placed to."""

    number: str
    token: int
    #: Attempts before this call.
    attempts: int
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallFacts:
    """How a customer call ended, as the SIP gateway reported it (times on `Clock.mono`)."""

    call_id: str
    #: The gateway's outcome name (`answered`, `no_answer`, `busy`, ...); None: not known.
    outcome: str | None
    code: int | None = None
    reason: str = ""
    dialled_at: float | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    #: Who hung up ("customer", "script", "abandon", "max_duration", ...; "" if never answered).
    ended_by: str = ""
    # IVR calls: the keys pressed, what the script recorded, whether it reached its SMS node.
    pressed: str = ""
    results: dict[str, str] = field(default_factory=dict)
    sms: bool = False
    # Agent calls: the agent reserved, when the customer was bridged to it, abandoned or not.
    agent: str | None = None
    connected_at: float | None = None
    abandoned: bool = False


def sms_text(template: str, number: str, attrs: dict[str, str]) -> str:
    """The campaign's SMS template with `{name}` and other contact attributes filled in (an
    attribute the contact lacks is left as written)."""
    values = {**attrs, "number": number}
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


def _engine(f: CallFacts) -> EngineEvent:
    if f.answered_at is not None:
        return EngineEvent(f.call_id, "ended")
    reason: dialer_core.UnansweredReason = "busy" if f.outcome == "busy" else "no_answer" if f.outcome == "no_answer" else "failed"
    return EngineEvent(f.call_id, "unanswered", reason)


def _record(campaign: str, c: Contact, f: CallFacts, clock: Clock, **kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(
        campaign=campaign, number=c.number, outcome=f.outcome or "failed", attempt=c.attempts + 1, call_id=f.call_id,
        dialled_at=clock.to_wall(f.dialled_at), ringing_at=clock.to_wall(f.ringing_at),
        answered_at=clock.to_wall(f.answered_at), ended_at=clock.to_wall(f.ended_at), sip_code=f.code,
        detail=f"{f.reason}; ended by {f.ended_by}" if f.ended_by else f.reason)
    base.update(kw)
    return CallRecord(**base)


def sms_reached(campaign: str, spec: dict[str, Any], c: Contact) -> Plan:
    """An IVR call's script reached its SMS node: the SMS is requested at once (at most once, the
    store sees to it), not when the call ends, so that a subscriber whose call is then cut by the
    node's death still gets it."""
    if not spec.get("sms"):
        return Plan()
    return Plan(sms=SmsRequest(campaign, c.number, sms_text(spec["sms"]["template"], c.number, c.attrs),
                               spec["sms"]["sender"]))


def ivr_call_ended(campaign: str, spec: dict[str, Any], c: Contact, f: CallFacts, clock: Clock, *,
                   sms_requested: bool = False) -> Plan:
    """An agentless (IVR) call ended: the outcome completes the contact (the retry policy
    applies), the CDR records it with the keys and the script's answers, and a subscriber whose
    script reached its SMS node gets the campaign's SMS (at most once, the store sees to it) -
    unless it was requested when the script got there (`sms_reached`, `sms_requested`)."""
    outcome = f.outcome or "failed"
    sms = None
    if f.sms and spec.get("sms") and not sms_requested:
        sms = SmsRequest(campaign, c.number, sms_text(spec["sms"]["template"], c.number, c.attrs), spec["sms"]["sender"])
    record = _record(campaign, c, f, clock, dtmf=f.pressed, answers=dict(f.results))
    if sms_requested:
        record = dataclasses.replace(record, sms_status="requested")
    return Plan(
        engine=_engine(f),
        sms=sms,
        complete=dialer_core.Completion(c.number, c.token, outcome),
        record=record,
        outcome=outcome, answered=f.answered_at is not None,
        agreed=sms is not None or sms_requested or f.results.get("agreed") == "yes",
    )


def _connected_detail(f: CallFacts) -> str:
    if f.connected_at is not None and f.answered_at is not None:
        return f"connected to {f.agent} {1000 * (f.connected_at - f.answered_at):.0f} ms after the answer"
    return f.reason


def agent_call_ended(campaign: str, c: Contact, f: CallFacts, api_call: str, clock: Clock) -> Plan:
    """A predictive or progressive customer call ended. Connected to an agent: the agent wraps
    up and its disposition completes the contact later. Otherwise (nobody answered, no agent in
    time: abandoned) the outcome completes it, and an agent reserved but never connected is
    free again."""
    connected = f.connected_at is not None and f.agent is not None
    outcome = "abandoned" if f.abandoned else f.outcome or "failed"
    record = _record(campaign, c, f, clock, outcome="connected" if connected else outcome,
                     call_id=api_call if connected else f.call_id, agent=f.agent if connected else None,
                     detail=f"{_connected_detail(f) if connected else f.reason}; ended by {f.ended_by}")
    return Plan(
        engine=_engine(f), record=record,
        complete=None if connected else dialer_core.Completion(c.number, c.token, outcome),
        release_reservation=None if connected else api_call,
        wrap=f.agent if connected else None, await_disposition=(f.agent, api_call) if connected and f.agent else None,
        outcome=outcome, answered=f.answered_at is not None,
    )


def handed_call_ended(campaign: str, c: Contact, f: CallFacts, api_call: str, agent: str, clock: Clock) -> Plan:
    """A manual or preview call (the customer handed to `agent` first) ended. Connected: the
    agent's disposition completes the contact. Nobody to talk to: the outcome completes it (the
    retry policy applies) and closes the agent's call, so that it can take the next customer."""
    connected = f.connected_at is not None
    outcome = "abandoned" if f.abandoned else f.outcome or "failed"
    record = _record(campaign, c, f, clock, outcome="connected" if connected else outcome, call_id=api_call,
                     agent=agent, detail=f"{_connected_detail(f) if connected else f.reason}; ended by {f.ended_by}")
    if connected:
        return Plan(engine=_engine(f), record=record, wrap=agent, outcome=outcome, answered=True)
    return Plan(
        engine=_engine(f), record=record, wrap=agent,
        complete=dialer_core.Completion(c.number, c.token, outcome),
        close=CloseCall(api_call, agent, campaign, event={"agent": agent, "call_id": api_call, "outcome": outcome,
                                                          "by": "dialer"}, if_open=True),
        outcome=outcome, answered=f.answered_at is not None,
    )


def not_placed(c: Contact, call_id: str) -> Plan:
    """The call was never placed (paused, stopped or out of the window while it waited for the
    trunk): the contact goes back, no attempt counted."""
    return Plan(engine=EngineEvent(call_id, "unanswered", "failed"), not_dialled=True,
                complete=dialer_core.Completion(c.number, c.token, "released", release=True))


def call_failed(campaign: str, c: Contact, call_id: str, error: str, *, handed_to: str | None = None,
                api_call: str | None = None) -> Plan:
    """Placing the call raised (a bug, a transport error): the contact goes back, never lost;
    a handed call's agent is free again."""
    plan = Plan(engine=EngineEvent(call_id, "unanswered", "failed"),
                complete=dialer_core.Completion(c.number, c.token, "failed", release=True))
    if handed_to is not None and api_call is not None:
        return Plan(engine=plan.engine, complete=plan.complete, wrap=handed_to,
                    close=CloseCall(api_call, handed_to, campaign, event={
                        "agent": handed_to, "call_id": api_call, "outcome": "failed", "by": "dialer", "detail": error},
                        if_open=True))
    return Plan(engine=plan.engine, complete=plan.complete,
                record=CallRecord(campaign=campaign, number=c.number, outcome="failed", attempt=c.attempts + 1,
                                  call_id=call_id, detail=error))


# -- the agent's side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handout:
    """A customer handed to an agent (manual, preview): its call, record and event, and when the
    dialer places the call (None: when the agent says)."""

    call_id: str
    record: dict[str, str]
    event: dict[str, Any]
    due: float | None


def hand_out(campaign: dict[str, Any], agent: str, claim: dialer_core.Claim, now: float) -> Handout:
    call_id = f"{campaign['id']}:{claim.partition}:{claim.token}"
    preview_s = float(campaign.get("preview_s", 15.0))
    due = now + preview_s if campaign["mode"] == "preview" and preview_s > 0 else None
    record = {"campaign": campaign["id"], "number": claim.number, "token": str(claim.token),
              "partition": str(claim.partition), "agent": agent, "handed_at": str(now), "attempts": str(claim.attempts),
              "dial": "waiting", "dial_at": str(due) if due is not None else ""}
    return Handout(call_id, record, {"agent": agent, "call_id": call_id, "source": claim.source}, due)


def disposition(campaign: dict[str, Any], call_id: str, call: dict[str, str], outcome: str, answers: dict[str, str],
                *, callback_at: float | None, do_not_call_back: bool, now: float) -> Plan:
    """The agent finished a call: its outcome completes the contact (a callback goes back to
    this agent; do-not-call-back waits out the campaign's period), the survey answers are kept,
    the call is closed and its CDR written (unless the lease had run out: `stale`)."""
    agent = call["agent"]
    dnc_until = now + campaign["do_not_call_back_days"] * 86_400 if do_not_call_back else None
    return Plan(
        complete=dialer_core.Completion(call["number"], int(call["token"]), outcome, callback_at=callback_at,
                                        agent=agent if callback_at is not None else None,
                                        do_not_call_back_until=dnc_until),
        close=CloseCall(call_id, agent, campaign["id"], number=call["number"], answers=answers,
                        event={"agent": agent, "call_id": call_id, "outcome": outcome}),
        record=CallRecord(campaign=campaign["id"], number=call["number"], outcome=outcome,
                          attempt=int(call.get("attempts", "0")) + 1, call_id=call_id, dialled_at=float(call["handed_at"]),
                          ended_at=now, agent=agent, answers=answers),
        record_unless_stale=True, record_detail_is_result=True,
    )


def skip(campaign: dict[str, Any], call_id: str, call: dict[str, str]) -> Plan:
    """Preview: the agent does not call this customer; the contact goes back, no attempt counted."""
    agent = call["agent"]
    return Plan(
        complete=dialer_core.Completion(call["number"], int(call["token"]), "skipped", release=True),
        close=CloseCall(call_id, agent, campaign["id"], number=call["number"],
                        event={"agent": agent, "call_id": call_id, "outcome": "skipped"}),
    )

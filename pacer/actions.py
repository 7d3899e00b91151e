"""A `Plan`: what a transition (pacer/transitions.py) decided, as data, and `execute()`, the one
code that carries it out against the store.

The order is fixed and matters: the SMS is requested before the contact is completed (a
subscriber who pressed 1 is never completed without the request that says so), the completion's
result goes into the closing event and decides whether a disposition's CDR is written, the CDR
is appended last. The pacing engine's events and the agent pool's bookkeeping are in-process
state; `execute` leaves them to the caller (`Plan.engine`, `Plan.wrap`, ...).

A plan's steps are written once each: given a `Progress`, `execute` skips the steps it already
wrote, so a caller whose write failed (Redis unreachable) runs it again once Redis is back and
nothing is written twice. Each step is also safe to repeat when its reply was lost: the SMS
request is created only if absent, a completion is by token (a second one is `stale`), closing a
call names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import dialer_core

from store import Store
from store.cdr import CallRecord
from store.queue import Queue


@dataclass(frozen=True)
class EngineEvent:
    """What the pacing engine is told when a call ends."""

    call_id: str
    kind: Literal["ended", "unanswered"]
    reason: dialer_core.UnansweredReason = "failed"


@dataclass(frozen=True)
class SmsRequest:
    campaign: str
    number: str
    text: str
    sender: str


@dataclass(frozen=True)
class CloseCall:
    """Close an agent's call (`store.agents.close_call`); the completion's result is added to
    `event` as `result`."""

    call_id: str
    agent: str | None
    campaign: str
    number: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    if_open: bool = False


@dataclass(frozen=True)
class Plan:
    engine: EngineEvent | None = None
    sms: SmsRequest | None = None
    complete: dialer_core.Completion | None = None
    close: CloseCall | None = None
    record: CallRecord | None = None
    #: Write the record only if the completion was not `stale` (a disposition after the lease).
    record_unless_stale: bool = False
    #: The record's detail is the completion's result (a disposition's CDR).
    record_detail_is_result: bool = False
    #: An agent reserved for this call and never connected is free again (by the call's id:
    #: whoever holds it, whether or not the reserving code learnt who).
    release_reservation: str | None = None
    #: The agent now wraps up (until its disposition).
    wrap: str | None = None
    #: (agent, call id): the contact is completed by this agent's disposition; until then the
    #: claim's lease is renewed.
    await_disposition: tuple[str, str] | None = None
    #: The call was never placed: it does not count as dialled.
    not_dialled: bool = False
    # What the runtime counts.
    outcome: str | None = None
    answered: bool = False
    agreed: bool = False


@dataclass(frozen=True)
class Done:
    """What executing a plan answered."""

    result: dialer_core.CompleteResult | None = None
    #: The SMS was queued (False: none asked, or this subscriber had one requested before).
    sms_queued: bool = False


@dataclass
class Progress:
    """The steps of a plan written so far (see `execute`)."""

    sms: bool = False
    queued: bool = False
    completed: bool = False
    result: dialer_core.CompleteResult | None = None
    closed: bool = False
    recorded: bool = False


async def execute(plan: Plan, store: Store, queue: Queue | None, progress: Progress | None = None, *,
                  lost: Callable[[dialer_core.Completion], bool] | None = None) -> Done:
    """Carry out the store's part of `plan`: SMS request, completion, closing the agent's call,
    CDR; the steps `progress` has are not written again. `queue` may be None only for a plan
    without a completion. `lost(completion)`: whether a `stale` answer means that Redis lost
    the claim's lease (its caller holds the claim); then `dialer_core.RedisRewound` is raised
    before anything else is written, for the caller to re-assert its claims and run the plan
    again."""
    p = progress or Progress()
    if plan.sms is not None and not p.sms:
        s = plan.sms
        p.queued = await store.sms.request(s.campaign, s.number, s.text, s.sender)
        p.sms = True
    if plan.complete is not None and not p.completed:
        assert queue is not None, "a plan with a completion needs the campaign's queue"
        (answer,) = await queue.complete([plan.complete])
        if answer == "stale" and lost is not None and lost(plan.complete):
            raise dialer_core.RedisRewound(f"the lease of {plan.complete.number} (token {plan.complete.token}) "
                                           "is gone while its call was in progress: Redis lost writes, or an "
                                           "earlier try of this completion went through after all")
        p.result, p.completed = answer, True
    result = p.result
    if plan.close is not None and not p.closed:
        c = plan.close
        event = None if c.event is None else ({**c.event, "result": result} if result is not None else c.event)
        await store.agents.close_call(c.call_id, c.agent, campaign=c.campaign, number=c.number, answers=c.answers or None,
                                      event=event, if_open=c.if_open)
        p.closed = True
    if plan.record is not None and not p.recorded and not (plan.record_unless_stale and result == "stale"):
        record = plan.record
        if plan.sms is not None:
            record = dataclasses.replace(record, sms_status="requested" if p.queued else "already_requested")
        if plan.record_detail_is_result and result is not None:
            record = dataclasses.replace(record, detail=result)
        await store.cdr.append(record)
        p.recorded = True
    return Done(result=result, sms_queued=p.queued)

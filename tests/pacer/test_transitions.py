"""The transitions of a call are pure functions: what the gateway reported, the campaign's
settings and the time in; a plan out. No Redis, no sockets, no clock."""

from __future__ import annotations

from typing import Any

import dialer_core

from pacer import transitions
from pacer.transitions import CallFacts, Clock, Contact

SPEC: dict[str, Any] = {"sms": {"template": "Hi {name}, install: https://x.vn/{number}", "sender": "MOBIFONE.AI"}}
CLOCK = Clock(mono=1_000.0, wall=1_700_000_000.0)
SHIFT = CLOCK.wall - CLOCK.mono
CONTACT = Contact("+84901000001", 42, 0, {"name": "An"})


def answered(**kw: Any) -> CallFacts:
    base: dict[str, Any] = dict(call_id="c/+84901000001/1", outcome="answered", code=200, reason="200 OK",
                                dialled_at=990.0, ringing_at=991.0, answered_at=995.0, ended_at=999.0)
    return CallFacts(**{**base, **kw})


def test_ivr_subscriber_who_pressed_1_gets_the_sms_once_requested() -> None:
    plan = transitions.ivr_call_ended("c", SPEC, CONTACT, answered(pressed="1", results={"agreed": "yes"}, sms=True,
                                                                   ended_by="script"), CLOCK)
    assert plan.sms is not None
    assert plan.sms.text == "Hi An, install: https://x.vn/+84901000001" and plan.sms.sender == "MOBIFONE.AI"
    assert plan.complete is not None and plan.complete.outcome == "answered" and plan.complete.token == 42
    assert plan.engine is not None and plan.engine.kind == "ended"
    assert plan.agreed and plan.answered and plan.outcome == "answered"
    r = plan.record
    assert r is not None and r.dtmf == "1" and r.answers == {"agreed": "yes"} and r.attempt == 1
    assert r.answered_at == 995.0 + SHIFT and r.dialled_at == 990.0 + SHIFT  # wall clock in the archive
    assert r.detail == "200 OK; ended by script"


def test_the_sms_is_requested_when_the_script_reaches_it_and_not_again_at_the_end() -> None:
    early = transitions.sms_reached("c", SPEC, CONTACT)
    assert early.sms is not None and early.sms.text == "Hi An, install: https://x.vn/+84901000001"
    assert early.complete is None and early.record is None and early.engine is None  # only the SMS, at once
    assert transitions.sms_reached("c", {}, CONTACT).sms is None  # a campaign without an SMS
    end = transitions.ivr_call_ended("c", SPEC, CONTACT, answered(pressed="1", sms=True, ended_by="script"), CLOCK,
                                     sms_requested=True)
    assert end.sms is None and end.agreed
    assert end.record is not None and end.record.sms_status == "requested"


def test_ivr_no_answer_is_retried_by_the_queue_and_tells_the_engine_why() -> None:
    f = CallFacts(call_id="x", outcome="no_answer", code=None, reason="ring timeout", dialled_at=990.0, ended_at=1020.0)
    plan = transitions.ivr_call_ended("c", SPEC, CONTACT, f, CLOCK)
    assert plan.sms is None and not plan.agreed and not plan.answered
    assert plan.complete is not None and plan.complete.outcome == "no_answer"
    assert plan.engine is not None and (plan.engine.kind, plan.engine.reason) == ("unanswered", "no_answer")
    assert plan.record is not None and plan.record.answered_at is None and plan.record.detail == "ring timeout"


def test_ivr_sms_needs_the_campaign_to_have_one() -> None:
    plan = transitions.ivr_call_ended("c", {}, CONTACT, answered(sms=True, results={"agreed": "yes"}), CLOCK)
    assert plan.sms is None and plan.agreed


def test_connected_agent_call_waits_for_the_disposition() -> None:
    f = answered(agent="a1", connected_at=995.25, ended_by="customer")
    plan = transitions.agent_call_ended("c", CONTACT, f, "c:0:42", CLOCK)
    assert plan.complete is None and plan.release_reservation is None
    assert plan.await_disposition == ("a1", "c:0:42") and plan.wrap == "a1"
    r = plan.record
    assert r is not None and r.outcome == "connected" and r.call_id == "c:0:42" and r.agent == "a1"
    assert r.detail == "connected to a1 250 ms after the answer; ended by customer"


def test_abandoned_agent_call_completes_and_frees_the_reservation() -> None:
    f = answered(agent="a1", abandoned=True, ended_by="abandon")
    plan = transitions.agent_call_ended("c", CONTACT, f, "c:0:42", CLOCK)
    assert plan.complete is not None and plan.complete.outcome == "abandoned"
    assert plan.release_reservation == "c:0:42" and plan.await_disposition is None and plan.wrap is None
    assert plan.record is not None and plan.record.outcome == "abandoned" and plan.record.agent is None
    assert plan.record.call_id == "c/+84901000001/1"


def test_handed_call_nobody_answered_closes_the_agents_call() -> None:
    f = CallFacts(call_id="x", outcome="busy", code=486, reason="486 Busy Here", dialled_at=990.0, ended_at=991.0)
    plan = transitions.handed_call_ended("c", CONTACT, f, "c:0:42", "a1", CLOCK)
    assert plan.complete is not None and plan.complete.outcome == "busy"
    assert plan.close is not None and plan.close.if_open and plan.close.agent == "a1"
    assert plan.close.event == {"agent": "a1", "call_id": "c:0:42", "outcome": "busy", "by": "dialer"}
    assert plan.wrap == "a1" and plan.record is not None and plan.record.agent == "a1"


def test_handed_call_connected_leaves_the_contact_to_the_agent() -> None:
    plan = transitions.handed_call_ended("c", CONTACT, answered(connected_at=995.1), "c:0:42", "a1", CLOCK)
    assert plan.complete is None and plan.close is None
    assert plan.record is not None and plan.record.outcome == "connected"


def test_a_call_never_placed_goes_back_uncounted() -> None:
    plan = transitions.not_placed(CONTACT, "x")
    assert plan.not_dialled and plan.complete is not None and plan.complete.outcome == "released"
    assert plan.record is None


def test_a_call_that_failed_is_recorded_and_given_back() -> None:
    plan = transitions.call_failed("c", CONTACT, "x", "boom")
    assert plan.complete is not None and plan.complete.outcome == "failed"
    assert plan.record is not None and plan.record.detail == "boom"
    handed = transitions.call_failed("c", CONTACT, "x", "boom", handed_to="a1", api_call="c:0:42")
    assert handed.record is None and handed.close is not None and handed.close.event is not None
    assert handed.close.event["detail"] == "boom" and handed.wrap == "a1"


def test_hand_out_is_due_after_the_preview_time_or_on_the_agents_word() -> None:
    class FakeClaim:  # the fields of a dialer_core.Claim the transition reads
        number, partition, token, attempts, source = "+84901000001", 3, 7, 1, "retry"

    claim: Any = FakeClaim()
    h = transitions.hand_out({"id": "c", "mode": "preview", "preview_s": 15.0}, "a1", claim, 100.0)
    assert h.call_id == "c:3:7" and h.due == 115.0 and h.record["dial"] == "waiting" and h.record["attempts"] == "1"
    assert h.event == {"agent": "a1", "call_id": "c:3:7", "source": "retry"}
    assert transitions.hand_out({"id": "c", "mode": "manual"}, "a1", claim, 100.0).due is None
    assert transitions.hand_out({"id": "c", "mode": "preview", "preview_s": 0}, "a1", claim, 100.0).due is None


def test_disposition_sets_the_callback_for_the_same_agent() -> None:
    call = {"agent": "a1", "number": "+84901000001", "token": "7", "handed_at": "90.0", "attempts": "0"}
    c = {"id": "c", "do_not_call_back_days": 30}
    plan = transitions.disposition(c, "c:0:7", call, "callback", {"q1": "yes"}, callback_at=500.0, do_not_call_back=False,
                                   now=100.0)
    assert plan.complete is not None and plan.complete.agent == "a1" and plan.complete.outcome == "callback"
    assert plan.record_unless_stale and plan.record_detail_is_result
    assert plan.close is not None and plan.close.answers == {"q1": "yes"} and not plan.close.if_open
    assert plan.record is not None and plan.record.dialled_at == 90.0 and plan.record.ended_at == 100.0


def test_skip_gives_the_contact_back() -> None:
    call = {"agent": "a1", "number": "+84901000001", "token": "7"}
    plan = transitions.skip({"id": "c"}, "c:0:7", call)
    assert plan.complete is not None and plan.complete.outcome == "skipped" and plan.record is None
    assert plan.close is not None and plan.close.event == {"agent": "a1", "call_id": "c:0:7", "outcome": "skipped"}

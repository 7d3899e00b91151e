"""Client transactions driven by hand: timers by their RFC 3261 names, no sockets, no clock."""

from __future__ import annotations

from sip_gateway.message import Request, Response, parse
from sip_gateway.transaction import (
    T1,
    T2,
    TIMER_B,
    TIMER_D,
    TIMER_F,
    Deliver,
    InviteClientTransaction,
    NonInviteClientTransaction,
    Send,
    State,
    TimedOut,
)

ADDR = ("127.0.0.1", 5060)


def headers(m: Request | Response, method: str, to: str) -> None:
    for name, value in (("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKt1"), ("From", "<sip:a@h>;tag=a"),
                        ("To", to), ("Call-ID", "c1"), ("CSeq", f"1 {method}")):
        m.add(name, value)


def request(method: str = "INVITE") -> Request:
    r = Request(method=method, uri="sip:1@h")
    headers(r, method, "<sip:1@h>")
    return r


def response(status: int, method: str = "INVITE") -> Response:
    r = Response(status=status, reason="X")
    headers(r, method, "<sip:1@h>;tag=b")
    return r


def test_timer_a_doubles_until_timer_b_times_out() -> None:
    tx = InviteClientTransaction(request(), ADDR)
    assert [type(a) for a in tx.start(0.0)] == [Send]
    sent_at = []
    now = 0.0
    while tx.state is State.CALLING:
        now = tx.deadline or now
        actions = tx.on_timer(now)
        if any(isinstance(a, Send) for a in actions):
            sent_at.append(now)
        if any(isinstance(a, TimedOut) for a in actions):
            break
    assert sent_at == [T1, 3 * T1, 7 * T1, 15 * T1, 31 * T1, 63 * T1]  # 0.5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert now == TIMER_B and tx.state is State.TERMINATED


def test_provisional_stops_retransmissions_and_a_busy_is_acked_on_the_same_branch() -> None:
    tx = InviteClientTransaction(request(), ADDR)
    tx.start(0.0)
    assert [type(a) for a in tx.on_response(response(180), 0.2)] == [Deliver]
    assert tx.timer_a is None and tx.state is State.PROCEEDING
    actions = tx.on_response(response(486), 3.0)
    ack = parse(next(a for a in actions if isinstance(a, Send)).data)
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.branch == "z9hG4bKt1"
    assert ack.to_tag == "b" and ack.cseq == (1, "ACK")
    # A retransmitted 486 is ACKed again, not delivered again; Timer D ends it.
    again = tx.on_response(response(486), 3.5)
    assert [type(a) for a in again] == [Send]
    tx.on_timer(3.0 + TIMER_D)
    assert tx.state is State.TERMINATED


def test_2xx_goes_to_the_tu_each_time_it_is_retransmitted() -> None:
    tx = InviteClientTransaction(request(), ADDR)
    tx.start(0.0)
    assert [type(a) for a in tx.on_response(response(200), 1.0)] == [Deliver]
    assert tx.state is State.ACCEPTED
    assert [type(a) for a in tx.on_response(response(200), 1.5)] == [Deliver]


def test_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    tx = NonInviteClientTransaction(request("BYE"), ADDR)
    tx.start(0.0)
    sent_at, now = [], 0.0
    while tx.state is not State.TERMINATED:
        now = tx.deadline or now
        actions = tx.on_timer(now)
        sent_at += [now for a in actions if isinstance(a, Send)]
    intervals = [b - a for a, b in zip([0.0] + sent_at, sent_at)]
    assert intervals[:4] == [T1, 2 * T1, 4 * T1, T2] and max(intervals) == T2
    assert now == TIMER_F

"""The dialog's rules for what the far end sends (RFC 3261 12.2.2, 13.2.2.4), driven by hand on
`OutboundCall`: messages in, datagrams out, no sockets, no clock."""

from __future__ import annotations

import dataclasses

import pytest

from sip_gateway.call import CallState, OutboundCall, TrunkConfig
from sip_gateway.dialog import Note, host_key
from sip_gateway.message import Request, Response, parse
from sip_gateway.transaction import TIMER_F, TIMER_J, Send
from sip_gateway.uac import Counters

TRUNK = ("10.0.0.5", 5060)
CFG = TrunkConfig(trunk=TRUNK, local=("10.0.0.1", 5070))
#: The trunk answering from another port of the same host (allowed: the host is what is checked).
TRUNK_OTHER_PORT = ("10.0.0.5", 5099)
ELSEWHERE = ("10.9.9.9", 5060)


def invite_of(c: OutboundCall, now: float = 0.0) -> Request:
    req = parse(c.start(now)[0].data)
    assert isinstance(req, Request)
    return req


def response(inv: Request, status: int, tag: str = "far1", contact: str = "<sip:gw@10.0.0.5:5060>") -> Response:
    r = Response(status=status, reason="OK" if status == 200 else "X")
    for name in ("Via", "From", "Call-ID", "CSeq"):
        r.add(name, inv.get(name) or "")
    r.add("To", f"{inv.get('To')};tag={tag}")
    if status == 200 and contact:
        r.add("Contact", contact)
    return r


def answered(cfg: TrunkConfig = CFG) -> tuple[OutboundCall, Request, Response]:
    c = OutboundCall("84901", cfg, 0.0)
    inv = invite_of(c)
    ok = response(inv, 200)
    out = c.on_message(parse(ok.encode()), TRUNK, 1.0)
    assert [parse(s.data).start_line().split()[0] for s in out] == ["ACK"]
    assert c.state is CallState.CONFIRMED and c.notes == []
    return c, inv, ok


def far(c: OutboundCall, ok: Response, method: str, cseq: int, *, from_tag: str | None = None,
        to_tag: str | None = None, body: str = "", content_type: str = "") -> Request:
    """A request from the far end in the dialog `ok` established (tags changed when given)."""
    r = Request(method=method, uri="sip:dialer@10.0.0.1:5070")
    r.add("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKfar" + str(cseq) + method)
    frm, to = ok.get("To") or "", ok.get("From") or ""
    r.add("From", frm.replace(f"tag={ok.to_tag}", f"tag={from_tag}") if from_tag is not None else frm)
    r.add("To", to.replace(f"tag={c.local_tag}", f"tag={to_tag}") if to_tag is not None else to)
    r.add("Call-ID", c.call_id)
    r.add("CSeq", f"{cseq} {method}")
    if content_type:
        r.add("Content-Type", content_type)
    r.body = body.encode()
    parsed = parse(r.encode())  # as it arrives
    assert isinstance(parsed, Request)
    return parsed


def statuses(out: list[Send]) -> list[int]:
    codes = []
    for s in out:
        m = parse(s.data)
        assert isinstance(m, Response)
        codes.append(m.status)
    return codes


def notes(c: OutboundCall) -> list[Note]:
    out = [n for n, _ in c.notes]
    c.notes.clear()
    return out


PRESS_1 = {"body": "Signal=1\r\nDuration=160\r\n", "content_type": "application/dtmf-relay"}


# --- the dialog's identity: tags ----------------------------------------------------------

@pytest.mark.parametrize("tags", [{"to_tag": "forged"}, {"from_tag": "forged"}, {"to_tag": ""}, {"from_tag": ""}])
def test_a_bye_without_the_dialogs_tags_gets_481_and_changes_nothing(tags: dict[str, str]) -> None:
    c, _, ok = answered()
    out = c.on_message(far(c, ok, "BYE", 5, **tags), TRUNK, 2.0)
    assert statuses(out) == [481] and notes(c) == [Note.REJECTED_DIALOG]
    assert c.state is CallState.CONFIRMED and c.result.ended_at is None
    assert c.dialog is not None and c.dialog.remote_cseq is None, "the refused request set no CSeq"
    # The same BYE with the right tags ends the call.
    assert statuses(c.on_message(far(c, ok, "BYE", 5), TRUNK, 3.0)) == [200]
    assert c.state is CallState.ENDED and c.result.ended_at == 3.0


def test_tags_compare_case_insensitively() -> None:
    """A tag is a token (RFC 3261 7.3.1: tokens are case-insensitive)."""
    c, _, ok = answered()
    req = far(c, ok, "OPTIONS", 1, to_tag=c.local_tag.upper(), from_tag=(ok.to_tag or "").upper())
    assert statuses(c.on_message(req, TRUNK, 2.0)) == [200] and notes(c) == []


def test_an_info_keypress_with_wrong_tags_is_no_keypress() -> None:
    c, _, ok = answered()
    assert statuses(c.on_message(far(c, ok, "INFO", 1, to_tag="x", **PRESS_1), TRUNK, 2.0)) == [481]
    assert c.info_digits == [] and notes(c) == [Note.REJECTED_DIALOG]
    assert statuses(c.on_message(far(c, ok, "INFO", 1, **PRESS_1), TRUNK, 2.1)) == [200]
    assert c.info_digits == ["1"]


def test_requests_before_the_answer_have_no_dialog() -> None:
    c = OutboundCall("84901", CFG, 0.0)
    inv = invite_of(c)
    ringing = response(inv, 180)
    c.on_message(parse(ringing.encode()), TRUNK, 0.5)
    for method in ("BYE", "INFO", "OPTIONS", "INVITE"):
        req = far(c, ringing, method, 1, **(PRESS_1 if method == "INFO" else {}))
        assert statuses(c.on_message(req, TRUNK, 1.0)) == [481]
    assert notes(c) == [Note.REJECTED_DIALOG] * 4
    assert c.state is CallState.RINGING and c.info_digits == []


def test_an_ack_of_another_dialog_is_counted_and_never_answered() -> None:
    c, _, ok = answered()
    assert c.on_message(far(c, ok, "ACK", 1, from_tag="other"), TRUNK, 2.0) == []
    assert notes(c) == [Note.REJECTED_DIALOG]
    assert c.on_message(far(c, ok, "ACK", 1), TRUNK, 2.0) == [] and notes(c) == []


# --- CSeq order and retransmissions ----------------------------------------------------------

def test_a_lower_cseq_is_answered_500_and_ignored() -> None:
    c, _, ok = answered()
    assert statuses(c.on_message(far(c, ok, "OPTIONS", 10), TRUNK, 2.0)) == [200]
    assert c.dialog is not None and c.dialog.remote_cseq == 10
    assert statuses(c.on_message(far(c, ok, "BYE", 9), TRUNK, 2.1)) == [500]
    assert statuses(c.on_message(far(c, ok, "INFO", 3, **PRESS_1), TRUNK, 2.2)) == [500]
    assert notes(c) == [Note.REJECTED_CSEQ] * 2
    assert c.state is CallState.CONFIRMED and c.info_digits == [] and c.dialog.remote_cseq == 10
    # The same number with another method is not lower: a new request.
    assert statuses(c.on_message(far(c, ok, "INFO", 10, **PRESS_1), TRUNK, 2.3)) == [200]
    assert c.info_digits == ["1"]
    assert statuses(c.on_message(far(c, ok, "BYE", 11), TRUNK, 2.4)) == [200] and c.finished


def test_a_retransmitted_bye_is_answered_again_and_acts_once() -> None:
    c, _, ok = answered()
    bye = far(c, ok, "BYE", 2)
    first = c.on_message(bye, TRUNK, 2.0)
    assert statuses(first) == [200] and c.finished and c.result.ended_at == 2.0
    # Our 200 was lost: the far end sends the BYE again, from another port of the same host.
    again = c.on_message(bye, TRUNK_OTHER_PORT, 2.5)
    assert [s.data for s in again] == [first[0].data] and again[0].addr == TRUNK_OTHER_PORT
    assert notes(c) == [Note.RETRANSMISSIONS] and c.result.ended_at == 2.0
    # A new request in the ended dialog: 481.
    assert statuses(c.on_message(far(c, ok, "INFO", 3, **PRESS_1), TRUNK, 2.6)) == [481]
    assert notes(c) == [Note.REJECTED_DIALOG] and c.info_digits == []


def test_after_the_far_ends_bye_the_call_is_kept_for_timer_j() -> None:
    c, _, ok = answered()
    c.on_message(far(c, ok, "BYE", 2), TRUNK, 40.0)  # after Timer M: the INVITE transaction is gone
    c.on_timer(40.0)
    assert c.finished and c.deadline == 40.0 + TIMER_J
    c.on_timer(40.0 + TIMER_J)
    assert c.deadline is None, "then it is forgotten"
    tcp, _, ok2 = answered(dataclasses.replace(CFG, transport="TCP"))
    tcp.on_message(far(tcp, ok2, "BYE", 2), TRUNK, 40.0)
    tcp.on_timer(40.0)
    assert tcp.deadline is None, "over TCP nothing is retransmitted: nothing is kept"


def test_a_retransmitted_info_is_one_keypress() -> None:
    c, _, ok = answered()
    info = far(c, ok, "INFO", 1, **PRESS_1)
    assert statuses(c.on_message(info, TRUNK, 2.0)) == [200]
    assert statuses(c.on_message(info, TRUNK, 2.5)) == [200]
    assert c.info_digits == ["1"] and notes(c) == [Note.RETRANSMISSIONS]
    # An older request answered before is answered again, not refused as out of order.
    assert statuses(c.on_message(far(c, ok, "OPTIONS", 2), TRUNK, 3.0)) == [200]
    assert statuses(c.on_message(info, TRUNK, 3.5)) == [200] and notes(c) == [Note.RETRANSMISSIONS]


def test_a_cancel_in_the_dialog_is_answered_and_cancels_nothing() -> None:
    c, _, ok = answered()
    c.on_message(far(c, ok, "OPTIONS", 5), TRUNK, 2.0)
    assert statuses(c.on_message(far(c, ok, "CANCEL", 4), TRUNK, 2.1)) == [200]  # no CSeq order for CANCEL
    assert c.state is CallState.CONFIRMED and notes(c) == []


# --- the source ------------------------------------------------------------------------------

def test_requests_from_another_host_are_dropped_unanswered() -> None:
    c, _, ok = answered()
    for req in (far(c, ok, "BYE", 2), far(c, ok, "INFO", 2, **PRESS_1)):
        assert c.on_message(req, ELSEWHERE, 2.0) == []
    assert notes(c) == [Note.REJECTED_SOURCE] * 2
    assert c.state is CallState.CONFIRMED and c.info_digits == []
    assert c.dialog is not None and c.dialog.remote_cseq is None
    # The trunk's host from another port: accepted.
    assert statuses(c.on_message(far(c, ok, "INFO", 2, **PRESS_1), TRUNK_OTHER_PORT, 2.1)) == [200]
    assert c.info_digits == ["1"]


def test_responses_from_another_host_do_not_answer_the_call() -> None:
    c = OutboundCall("84901", CFG, 0.0)
    inv = invite_of(c)
    forged = parse(response(inv, 200).encode())  # the right branch, even
    assert c.on_message(forged, ELSEWHERE, 0.5) == []
    assert notes(c) == [Note.REJECTED_SOURCE] and c.state is CallState.CALLING and c.result.answered_at is None
    out = c.on_message(forged, TRUNK_OTHER_PORT, 0.6)
    assert len(out) == 1 and c.state is CallState.CONFIRMED


def test_the_next_hop_the_trunks_2xx_gives_may_send_in_the_dialog() -> None:
    c = OutboundCall("84901", CFG, 0.0)
    inv = invite_of(c)
    ok = response(inv, 200, contact="<sip:media@10.0.0.77:5080>")  # no Record-Route: in-dialog is direct
    ack = c.on_message(parse(ok.encode()), TRUNK, 1.0)
    assert ack[0].addr == ("10.0.0.77", 5080)
    assert statuses(c.on_message(far(c, ok, "BYE", 1), ("10.0.0.77", 5080), 2.0)) == [200]


def test_over_tcp_the_connection_is_the_source() -> None:
    c, _, ok = answered(dataclasses.replace(CFG, transport="TCP"))
    # The UAC hands every message on the trunk's connection over with the connection's peer.
    assert statuses(c.on_message(far(c, ok, "INFO", 1, **PRESS_1), ("192.0.2.1", 40000), 2.0)) == [200]
    assert notes(c) == []


def test_host_key() -> None:
    assert host_key("10.0.0.5") == "10.0.0.5"
    assert host_key("[2001:DB8:0:0::1]") == "2001:db8::1" == host_key("2001:db8::1")
    assert host_key("::ffff:10.0.0.5") == "10.0.0.5"
    assert host_key("Carrier.Example") == "carrier.example"


# --- responses -----------------------------------------------------------------------------

def test_a_response_for_no_transaction_is_stray_and_not_acked() -> None:
    c, inv, ok = answered()
    forged = Response(status=200, reason="OK", headers=[(k, v) for k, v in ok.headers if k != "Via"])
    forged.headers.insert(0, ("Via", "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKnotours"))
    assert c.on_message(parse(forged.encode()), TRUNK, 2.0) == []
    assert notes(c) == [Note.STRAY]
    # A 2xx retransmission of our INVITE after its transaction is gone (Timer M) is ACKed again.
    c.on_timer(40.0)
    assert "INVITE/" + inv.branch not in c.txs
    again = c.on_message(parse(ok.encode()), TRUNK, 41.0)
    assert [parse(s.data).start_line().split()[0] for s in again] == ["ACK"] and notes(c) == []


# --- forks ------------------------------------------------------------------------------------

def test_a_forked_2xx_is_acked_and_hung_up_and_the_first_dialog_goes_on() -> None:
    c, inv, ok = answered()
    fork = response(inv, 200, tag="far2", contact="<sip:other@10.0.0.6:5062>")
    out = c.on_message(parse(fork.encode()), TRUNK, 1.2)
    ack, bye = (parse(s.data) for s in out)
    assert isinstance(ack, Request) and isinstance(bye, Request)
    assert (ack.method, bye.method) == ("ACK", "BYE")
    assert ack.to_tag == bye.to_tag == "far2" and bye.from_tag == c.local_tag
    assert ack.uri == bye.uri == "sip:other@10.0.0.6:5062" and out[1].addr == ("10.0.0.6", 5062)
    assert ack.cseq == (inv.cseq[0], "ACK") and bye.cseq == (inv.cseq[0] + 1, "BYE")
    assert notes(c) == [Note.FORKS]
    assert c.state is CallState.CONFIRMED and c.dialog is not None and c.dialog.remote_tag == "far1"
    # Its retransmission: ACKed again, not hung up again. The first dialog's: our first ACK.
    again = c.on_message(parse(fork.encode()), TRUNK, 1.4)
    assert [s.data for s in again] == [out[0].data]
    first = c.on_message(parse(ok.encode()), TRUNK, 1.5)
    assert len(first) == 1 and parse(first[0].data).to_tag == "far1"
    # The fork's 200 to our BYE (from its own host) does not end our call.
    done = response(bye, 200, tag="far2")
    done.set("To", bye.get("To") or "")
    assert c.on_message(parse(done.encode()), ("10.0.0.6", 5062), 1.6) == []
    assert c.state is CallState.CONFIRMED and notes(c) == []
    # The first dialog still works both ways.
    assert statuses(c.on_message(far(c, ok, "INFO", 1, **PRESS_1), TRUNK, 2.0)) == [200]
    assert c.info_digits == ["1"]
    bye1 = parse(c.hangup(3.0)[0].data)
    assert isinstance(bye1, Request) and bye1.to_tag == "far1"


def test_a_forks_bye_that_times_out_does_not_end_the_call() -> None:
    c, inv, _ = answered()
    c.on_message(parse(response(inv, 200, tag="far2").encode()), TRUNK, 1.0)
    now = 1.0
    while now < 1.0 + TIMER_F:
        now = c.deadline or now + 1
        c.on_timer(now)
    assert c.state is CallState.CONFIRMED and c.result.ended_at is None


def test_a_fork_after_we_hung_up_is_still_hung_up() -> None:
    c, inv, _ = answered()
    c.hangup(1.5)
    out = c.on_message(parse(response(inv, 200, tag="far3").encode()), TRUNK, 1.6)
    assert [parse(s.data).start_line().split()[0] for s in out] == ["ACK", "BYE"]
    assert c.state is CallState.TERMINATING and notes(c) == [Note.FORKS]


def test_every_note_is_a_counter() -> None:
    counters = Counters()
    for note in Note:
        counters.note(note)
        assert getattr(counters, note.value) == 1

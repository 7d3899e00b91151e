"""Ending a dead dialer's calls (sip_gateway/orphans.py), driven by hand: the CANCEL rebuilt from
what the dead node wrote once is the CANCEL it would have sent itself (RFC 3261 9.1), the BYE is
in the saved dialog, and `Ending` runs them to their answers. The same against sipp, with the
node really killed: tests/pacer/test_runtime_e2e.py."""

from __future__ import annotations

import dataclasses

from sip_gateway.call import CallIds, OutboundCall, TrunkConfig
from sip_gateway.dialog import host_key
from sip_gateway.message import Request, Response, parse
from sip_gateway.orphans import Ending, RunInfo, SavedDialog
from sip_gateway.transaction import TIMER_F

TRUNK = ("10.0.0.5", 5060)
CFG = TrunkConfig(trunk=TRUNK, local=("10.0.0.1", 5070), caller_id="84281234567", domain="carrier.example")
SECRET = bytes(range(16))


def sent(c: OutboundCall, data: bytes) -> Request:
    req = parse(data)
    assert isinstance(req, Request)
    return req


def ringing_call(cfg: TrunkConfig = CFG) -> tuple[OutboundCall, Request]:
    c = OutboundCall("84901000002", cfg, 0.0, ids=CallIds.derive(SECRET, "c1/0/17", cfg.local[0]))
    inv = sent(c, c.start(0.0)[0].data)
    ringing = Response(status=180, reason="Ringing")
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        ringing.add(name, inv.get(name) or "")
    c.on_message(parse(ringing.encode()), TRUNK, 0.1)
    return c, inv


CANCEL_FIELDS = ("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards")


def test_derived_ids_are_the_secrets_and_the_names() -> None:
    a = CallIds.derive(SECRET, "c1/0/17", "10.0.0.1")
    assert a == CallIds.derive(SECRET, "c1/0/17", "10.0.0.1")
    assert a.call_id.endswith("@10.0.0.1") and len(a.call_id) == 16 + len("@10.0.0.1") and len(a.local_tag) == 8
    others = {CallIds.derive(SECRET, "c1/0/18", "10.0.0.1"), CallIds.derive(bytes(16), "c1/0/17", "10.0.0.1")}
    assert all(o.call_id != a.call_id and o.local_tag != a.local_tag and o.branch_base != a.branch_base for o in others)
    assert a.invite_branch(1) != a.invite_branch(2) and a.invite_branch(1).startswith("z9hG4bK")


def test_the_rebuilt_cancel_is_the_one_the_call_would_send() -> None:
    c, inv = ringing_call()
    own = sent(c, c.hangup(1.0)[0].data)  # the live call's own CANCEL
    assert own.method == "CANCEL"
    run = RunInfo.loads(RunInfo.of("node-a", SECRET, CFG).dumps())  # as another process reads it
    (rebuilt,) = run.cancels("c1/0/17", "84901000002")
    assert rebuilt.method == "CANCEL" and rebuilt.uri == own.uri == inv.uri
    for name in CANCEL_FIELDS:
        assert rebuilt.get(name) == own.get(name), name
    assert rebuilt.branch == inv.branch and rebuilt.cseq == (1, "CANCEL")


def test_a_trunk_that_challenges_gets_the_cancel_of_either_invite() -> None:
    cfg = dataclasses.replace(CFG, username="dialer", password="pw")
    c = OutboundCall("84901000002", cfg, 0.0, ids=CallIds.derive(SECRET, "c1/0/17", cfg.local[0]))
    first = sent(c, c.start(0.0)[0].data)
    challenge = Response(status=407, reason="Proxy Authentication Required")
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        challenge.add(name, first.get(name) or "")
    challenge.add("Proxy-Authenticate", 'Digest realm="carrier", nonce="abc", algorithm=MD5')
    out = c.on_message(parse(challenge.encode()), TRUNK, 0.1)
    second = next(r for r in (parse(s.data) for s in out) if isinstance(r, Request) and r.method == "INVITE")
    cancels = RunInfo.of("node-a", SECRET, cfg).cancels("c1/0/17", "84901000002")
    assert [(x.branch, x.cseq[0]) for x in cancels] == [(first.branch, 1), (second.branch, 2)]


def answered_call() -> tuple[OutboundCall, Response]:
    c, inv = ringing_call()
    ok = Response(status=200, reason="OK")
    for name in ("Via", "From", "Call-ID", "CSeq"):
        ok.add(name, inv.get(name) or "")
    ok.add("To", f"{inv.get('To')};tag=far1")
    ok.add("Contact", "<sip:gw@10.0.0.7:5080>")
    ok.add("Record-Route", "<sip:sbc2.example;lr>")
    ok.add("Record-Route", "<sip:10.0.0.6;lr>")
    c.on_message(parse(ok.encode()), TRUNK, 1.0)
    return c, ok


def test_the_bye_is_in_the_saved_dialog_from_our_own_address() -> None:
    c, ok = answered_call()
    saved = SavedDialog.of(c)
    assert saved is not None and SavedDialog.loads(saved.dumps()) == saved
    own = sent(c, c.hangup(2.0)[0].data)  # the BYE the live call would send
    bye = saved.bye(("10.0.0.9", 5099), "UDP")
    assert bye.method == "BYE" and bye.uri == own.uri == "sip:gw@10.0.0.7:5080"
    for name in ("From", "To", "Call-ID", "CSeq"):
        assert bye.get(name) == own.get(name), name
    assert bye.get_all("Route") == own.get_all("Route") == ["<sip:10.0.0.6;lr>", "<sip:sbc2.example;lr>"]
    assert bye.top_via.startswith("SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bK") and bye.branch != own.branch
    assert saved.next_hop == ("10.0.0.6", 5060)
    assert SavedDialog.of(ringing_call()[0]) is None  # no dialog before an answer


def answer(req: Request, status: int = 200, reason: str = "OK") -> bytes:
    r = Response(status=status, reason=reason)
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        r.add(name, req.get(name) or "")
    return r.encode()


def test_an_ending_runs_to_its_answer_from_the_trunk_only() -> None:
    (cancel,) = RunInfo.of("node-a", SECRET, CFG).cancels("c1/0/17", "84901000002")
    e = Ending(cancel.call_id, [(cancel, TRUNK)], False, {host_key(TRUNK[0])})
    (first,) = e.start(0.0)
    assert first.addr == TRUNK and sent_ok(first.data, cancel)
    assert e.on_message(parse(answer(cancel)), ("10.9.9.9", 5060), 0.1) == [] and not e.finished  # not the trunk
    assert e.on_timer(0.5) and not e.finished  # Timer E: sent again
    e.on_message(parse(answer(cancel)), ("10.0.0.5", 5099), 0.6)  # another port of the trunk's host
    assert e.finished and e.outcome == "CANCEL sent, answered 200 OK"


def sent_ok(data: bytes, req: Request) -> bool:
    return data == req.encode()


def test_an_ending_that_gets_no_answer_gives_up_at_timer_f() -> None:
    c, _ = answered_call()
    saved = SavedDialog.of(c)
    assert saved is not None
    bye = saved.bye(("10.0.0.9", 5099), "UDP")
    e = Ending(saved.call_id, [(bye, saved.next_hop)], False, {host_key(TRUNK[0]), host_key(saved.next_hop[0])})
    e.start(0.0)
    t = 0.0
    while not e.finished and t < TIMER_F + 1:
        t = e.deadline or t + 1
        e.on_timer(t)
    assert e.finished and e.outcome == "BYE sent, no answer in 32 s" and t <= TIMER_F + 0.01


def test_the_far_ends_bye_crossing_ours_is_answered_and_ends_it() -> None:
    c, ok = answered_call()
    saved = SavedDialog.of(c)
    assert saved is not None
    e = Ending(saved.call_id, [(saved.bye(("10.0.0.9", 5099), "UDP"), saved.next_hop)], False, {"10.0.0.6", "10.0.0.5"})
    e.start(0.0)
    theirs = Request(method="BYE", uri="sip:84281234567@10.0.0.1:5070")
    theirs.add("Via", "SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bKtheirs")
    theirs.add("From", ok.get("To") or "")
    theirs.add("To", ok.get("From") or "")
    theirs.add("Call-ID", saved.call_id)
    theirs.add("CSeq", "5 BYE")
    (reply,) = e.on_message(parse(theirs.encode()), ("10.0.0.6", 5060), 0.2)
    assert parse(reply.data).start_line() == "SIP/2.0 200 OK" and e.finished
    assert e.outcome == "BYE sent; the far end hung up (BYE)"

"""SIP fuzz: thousands of seeded mutations of in-dialog requests, INVITE responses and RFC 3261 /
RFC 4475 edge cases (tests/support/sip_fuzz.py), sent over loopback UDP at a real UAC with live
calls answered by sipp - from the trunk's host and from another.

One datagram at a time, the UAC's counters are read before and after it: every datagram moves
exactly one of them (malformed, stray, rejected_source, rejected_dialog, rejected_cseq,
retransmissions) or none (a keep-alive, or a request accepted and answered), and that one is what
the case predicts - exactly for benign and breaking mutations, within the family's outcomes for
random byte damage. Nothing raises (the loop's exception handler, the log, `failed`), every
answer that reaches the attacker is the one counted (481s, 500s, the rest), no keypress reaches
the calls, and every live call is still up afterwards and ends normally with its BYE."""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import uvloop

from sip_gateway.call import CallState, TrunkConfig
from sip_gateway.errors import SipParseError
from sip_gateway.message import Request, Response, parse
from sip_gateway.outcomes import CallResult, Outcome
from sip_gateway.uac import CallHooks, Counters, Uac
from tests.support.sip_fuzz import AGAIN, BUCKETS, CSEQ, DIALOG, NONE, Case, Target, cases
from tests.support.sipp import Sipp

SEED = 3261
CASES = 5000
#: The fuzz stops sending after this long (the accounting holds for what was sent); at least
#: MIN_CASES must have gone out, or the test fails.
TIME_LIMIT_S = 40.0
MIN_CASES = 1000
CALLS = 4
ELSEWHERE = "127.0.0.2"


class Watched(Uac):
    """The real UAC, and what it made of each datagram (the counter it moved). Before the fuzz,
    `seen` is what arrived; during it, `got` is the outcome of the datagram from `watch`, and
    `foreign` what came from anyone else (sipp; another test on this machine whose peer still
    sends to a port our socket now has)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Request | Response] = []
        self.watch: tuple[str, int] | None = None
        self.arrived = asyncio.Event()
        self.got = ""
        self.foreign: list[tuple[tuple[str, int], str, bytes]] = []

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        before = Counters(**vars(self.counters))
        super().received(data, addr)
        if self.watch is None:
            try:
                self.seen.append(parse(data))
            except SipParseError:
                pass
            return
        got = outcome(before, self.counters)
        if addr == self.watch and not self.arrived.is_set():
            self.got = got
            self.arrived.set()
        else:
            self.foreign.append((addr, got, data[:80]))


def outcome(before: Counters, after: Counters) -> str:
    """The one counter a datagram moved, by one ("none": none); anything else is named as such
    (and is no case's outcome)."""
    moved = {b: getattr(after, b) - getattr(before, b) for b in BUCKETS if getattr(after, b) != getattr(before, b)}
    if len(moved) > 1 or any(v != 1 for v in moved.values()):
        return f"one datagram moved {moved}"
    return next(iter(moved), NONE)


def answers_expected(result: str, data: bytes) -> int:
    """How many datagrams the UAC sends back for a case that came out `result`."""
    if result in (CSEQ, AGAIN):
        return 1
    if result not in (DIALOG, NONE) or not data.strip():
        return 0
    m = parse(data)
    return 1 if isinstance(m, Request) and m.method != "ACK" else 0


def sock(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((host, 0))
    s.setblocking(False)
    return s


def drain(s: socket.socket, statuses: collections.Counter[int]) -> None:
    while True:
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        m = parse(data)
        assert isinstance(m, Response), "the UAC only answers the attacker"
        statuses[m.status] += 1


def test_sip_fuzz(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sip_gateway")
    sipp = Sipp("uas_in_dialog.xml", CALLS, tmp_path, timeout_s=150).start()
    try:
        report = uvloop.run(fuzz(sipp))
        assert sipp.wait(30) == 0, sipp.errors()  # every BYE answered; nothing unexpected reached sipp
    finally:
        sipp.stop()
    assert [r.getMessage() for r in caplog.records] == []
    print(report)


async def fuzz(sipp: Sipp) -> str:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, ctx: errors.append(ctx))
    uac = await Watched.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
    keys: list[tuple[str, str]] = []
    hooks = CallHooks(answered=lambda c: None, dtmf=lambda cid, key: keys.append((cid, key)))
    calls = [asyncio.ensure_future(uac.call(f"8490100000{i}", hooks=hooks)) for i in range(CALLS)]
    trunk_side, elsewhere = sock("127.0.0.1"), sock(ELSEWHERE)
    try:
        deadline = loop.time() + 20
        while sum(isinstance(m, Request) and m.method == "OPTIONS" for m in uac.seen) < CALLS:
            assert loop.time() < deadline, "sipp's calls were not all answered and in their dialog within 20 s"
            await asyncio.sleep(0.01)
        targets = [target(uac, m) for m in uac.seen if isinstance(m, Response) and m.status == 200]
        assert len(targets) == CALLS
        plan = cases(SEED, CASES, targets)
        start = Counters(**vars(uac.counters))
        results: collections.Counter[tuple[str, str]] = collections.Counter()
        statuses: collections.Counter[int] = collections.Counter()
        expected = collections.Counter[str]()
        sent = size = 0
        started = time.perf_counter()
        for case in plan:
            if time.perf_counter() - started > TIME_LIMIT_S:
                break
            s = elsewhere if case.source == "elsewhere" else trunk_side
            rounds = [(case.family, None)] + ([(case.family + " (again)", AGAIN)] if case.again else [])
            first = ""
            for family, again in rounds:
                got = await send(uac, s, case.data, case, (AGAIN if first == NONE else first) if again else None)
                first = first or got
                results[(family, got)] += 1
                answers = answers_expected(got, case.data)
                expected["answers"] += answers
                expected["481"] += answers if got == DIALOG else 0
                sent += 1
                size += len(case.data)
            for x in (trunk_side, elsewhere):
                drain(x, statuses)
        elapsed = time.perf_counter() - started
        # The answers still in flight.
        deadline = loop.time() + 5
        while sum(statuses.values()) < expected["answers"] and loop.time() < deadline:
            await asyncio.sleep(0.01)
            for x in (trunk_side, elsewhere):
                drain(x, statuses)

        c = uac.counters
        assert sent >= MIN_CASES, f"only {sent} datagrams in {TIME_LIMIT_S:g} s"
        assert c.failed == 0 and errors == []
        by_outcome = collections.Counter[str]()
        for (_, o), n in results.items():
            by_outcome[o] += n
        assert sum(by_outcome.values()) == sent
        # Every datagram the UAC handled meanwhile is one of ours or one accounted as foreign, and
        # its counters moved by exactly what the datagrams were found to be.
        others = len(uac.foreign)
        assert others <= 10, f"datagrams from others during the fuzz: {uac.foreign}"
        assert c.received - start.received == sent + len(uac.foreign)
        total = by_outcome + collections.Counter(o for _, o, _ in uac.foreign)
        for b in BUCKETS:
            assert total[b] == getattr(c, b) - getattr(start, b), (b, total[b], getattr(c, b) - getattr(start, b))
        assert sum(statuses.values()) == expected["answers"], (statuses, expected)
        assert statuses[481] == expected["481"], "each refusal of the dialog but an ACK's is a 481"
        assert statuses[500] == by_outcome[CSEQ]
        assert keys == [], "no keypress reached a call"
        for t in targets:
            call = uac.calls.get(t.call_id)
            assert call is not None and call.state is CallState.CONFIRMED, f"call {t.call_id} is still up"
        assert not any(f.done() for f in calls)
        for t in targets:
            uac.hangup(t.call_id)
        ended: list[CallResult] = list(await asyncio.wait_for(asyncio.gather(*calls), 15))
        for r in ended:
            assert r.outcome is Outcome.ANSWERED and r.ended_at is not None, r
        lines = [f"SIP fuzz: {sent} datagrams ({size / 1e6:.1f} MB) in {elapsed:.1f} s, "
                 f"{c.failed} failed, {len(errors)} unhandled exceptions; {CALLS} live calls unaffected; "
                 f"{others} datagrams from others meanwhile",
                 "  by outcome: " + ", ".join(f"{k} {v}" for k, v in sorted(by_outcome.items())),
                 f"  answers to the attacker: {dict(sorted(statuses.items()))}"]
        lines += [f"  {f}: {o} {n}" for (f, o), n in sorted(results.items())]
        return "\n".join(lines)
    finally:
        for f in calls:
            f.cancel()
        trunk_side.close()
        elsewhere.close()
        uac.close()


async def send(uac: Watched, s: socket.socket, data: bytes, case: Case, expect: str | None = None) -> str:
    """Send one datagram, wait until the UAC has handled it, and check what it made of it."""
    uac.watch = s.getsockname()
    uac.arrived.clear()
    s.sendto(data, uac.cfg.local)
    try:
        await asyncio.wait_for(uac.arrived.wait(), 5)
    except TimeoutError:
        raise AssertionError(f"the UAC did not receive {case.family} / {case.kind}: {data[:200]!r}") from None
    got = uac.got
    allowed = {expect} if expect is not None else case.allowed
    assert got in allowed, f"{case.family} / {case.kind}: {got}, expected {sorted(allowed)}: {data[:300]!r}"
    return got


def target(uac: Watched, ok: Response) -> Target:
    """What an eavesdropper learns of a call from its 200 OK (and our INVITE's Via and branch,
    which the 200 echoes)."""
    call = uac.calls[ok.call_id]
    assert ok.from_tag and ok.to_tag
    return Target(call_id=ok.call_id, our_tag=ok.from_tag, their_tag=ok.to_tag, far_from=ok.get("To") or "",
                  far_to=ok.get("From") or "", uri=call.contact.strip("<>"), branch=ok.branch, via=ok.top_via,
                  our_from=ok.get("From") or "", our_to=(ok.get("To") or "").split(";tag=")[0])

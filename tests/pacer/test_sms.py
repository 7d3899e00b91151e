"""SMS over SMPP against the SMSC simulator (a real SMPP server on loopback) and a real Redis: one
message per subscriber per campaign whatever is asked, refusals retried, delivery receipts
recorded, and a sender killed with SIGKILL never doubles a message."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import redis as sync_redis

from api.auth import create_token
from pacer.cdr import Recorder
from pacer.sms import SmscConfig, SmsSender, encode
from store import Store, keys
from store.sms import SmsStore
from tests.support.api_server import api_server
from tests.support.smsc import smsc


def numbers(n: int, base: int = 0) -> list[str]:
    return [f"+849{base + i:08d}" for i in range(n)]


def test_one_message_per_subscriber_with_receipts(redis_url: str, tmp_path: Path) -> None:
    subs = numbers(300)
    with smsc(tmp_path) as sim:
        async def scenario() -> tuple[list[bool], dict[str, int]]:
            r = Store(redis_url)
            firsts = [await r.sms.request("seed", n, "Cảm ơn quý khách! / Thank you", "Operator") for n in subs]
            again = [await r.sms.request("seed", n, "Thank you", "Operator") for n in subs[:50]]
            other = await r.sms.request("other", subs[0], "Thank you", "Operator")  # another campaign: its own
            sender = SmsSender(redis_url, SmscConfig.parse(sim.address, "dialer", retry_delay_s=0.2))
            # The CDR records, through a recorder of our own (other tests' servers may be
            # recording - and trimming - the same stream into their archives).
            recorder = Recorder(redis_url, tmp_path / "cdr.sqlite3", block_ms=50)
            stop = asyncio.Event()
            rec_task = asyncio.create_task(recorder.run(stop))
            while not recorder.holding:
                await asyncio.sleep(0.01)
            task = asyncio.create_task(sender.run(stop))
            deadline = time.monotonic() + 30
            while (sender.counts.get("delivered", 0) < 301 or recorder.recorded < 602) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await task
            await rec_task
            await r.close()
            assert all(firsts) and other
            return again, sender.counts

        again, counts = asyncio.run(scenario())
        msgs = sim.messages()
    assert not any(again)  # asked twice: queued once
    to = Counter((m["to"]) for m in msgs)
    assert len(msgs) == 301 and to[subs[0].lstrip("+")] == 2 and max(c for n, c in to.items() if n != subs[0].lstrip("+")) == 1
    assert msgs[0]["from"] == "Operator" and msgs[0]["from_ton"] == 5
    assert {m["text"] for m in msgs} == {"Cảm ơn quý khách! / Thank you", "Thank you"}  # UCS-2 round trip
    assert counts["sent"] == 301 and counts["delivered"] == 301
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    states = r.hgetall(keys.sms_state("seed"))
    assert len(states) == 300 and all(v.startswith("delivered|DELIVRD") for v in states.values())
    with sqlite3.connect(tmp_path / "cdr.sqlite3") as db:
        by_status = dict(db.execute("SELECT sms_status, count(*) FROM cdr WHERE kind = 'sms' GROUP BY sms_status").fetchall())
    assert by_status == {"sent": 301, "delivered": 301}
    r.close()


def test_refusals_are_retried_never_doubled(redis_url: str, tmp_path: Path) -> None:
    subs = numbers(20)
    with smsc(tmp_path, refuse_first=7, receipts=False) as sim:
        async def scenario() -> dict[str, int]:
            r = Store(redis_url)
            for n in subs:
                await r.sms.request("seed", n, "Thank you", "Operator")
            sender = SmsSender(redis_url, SmscConfig.parse(sim.address, "dialer", retry_delay_s=0.2, window=4))
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run(stop))
            deadline = time.monotonic() + 30
            while sender.counts.get("sent", 0) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await task
            await r.close()
            return sender.counts

        counts = asyncio.run(scenario())
        msgs = sim.messages()
    assert counts["refused"] == 7 and counts["sent"] == 20
    assert sorted(m["to"] for m in msgs) == sorted(n.lstrip("+") for n in subs)


def test_an_smsc_down_then_back_gets_every_message_once(redis_url: str, tmp_path: Path) -> None:
    """The SMSC is not there when the sender starts, then comes up; later it goes away (between
    messages) and comes back: every request is sent once it is up, none twice."""
    from tests.support.redis_server import free_port

    subs = numbers(40, base=90_000)
    port = free_port()

    async def scenario() -> tuple[list[dict[str, object]], list[dict[str, object]], dict[str, int]]:
        r = Store(redis_url)
        for n in subs[:20]:
            await r.sms.request("down", n, "Thank you", "Operator")
        sender = SmsSender(redis_url, SmscConfig.parse(f"127.0.0.1:{port}", "dialer", retry_delay_s=0.2, window=4))
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))

        async def sent(n: int) -> None:
            deadline = time.monotonic() + 30
            while sender.counts.get("sent", 0) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

        await asyncio.sleep(3.0)  # nobody listens on the port: every bind fails
        assert sender.counts.get("sent", 0) == 0
        (tmp_path / "1").mkdir()
        with smsc(tmp_path / "1", port=port, receipts=False) as sim:
            await sent(20)
            first = sim.messages()
        for n in subs[20:]:  # requested while the SMSC is down again
            await r.sms.request("down", n, "Thank you", "Operator")
        await asyncio.sleep(3.0)
        (tmp_path / "2").mkdir()
        with smsc(tmp_path / "2", port=port, receipts=False) as sim:
            await sent(40)
            await asyncio.sleep(0.5)
            second = sim.messages()
        stop.set()
        await task
        await r.close()
        return first, second, sender.counts

    first, second, counts = asyncio.run(scenario())
    assert counts["sent"] == 40, counts
    to = Counter(str(m["to"]) for m in first + second)
    assert sorted(to) == sorted(n.lstrip("+") for n in subs) and max(to.values()) == 1, to


def test_bad_requests() -> None:
    async def scenario() -> None:
        import pytest

        with pytest.raises(ValueError, match="alphanumeric"):
            await SmsStore(None).request("c", "+84900000000", "x", "Way too long a sender")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="text"):
            await SmsStore(None).request("c", "+84900000000", "", "Operator")  # type: ignore[arg-type]

    asyncio.run(scenario())
    assert encode("Thanks") == (b"Thanks", 0) and encode("Cảm ơn")[1] == 8


def test_sigkill_of_the_sender_never_doubles(redis_url: str, tmp_path: Path) -> None:
    total = 3000
    subs = numbers(total, base=50_000)
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    create_token(redis_url, "admin")

    async def enqueue() -> None:
        ar = Store(redis_url)
        for n in subs:
            await ar.sms.request("kill", n, "Thank you", "Operator")
        await ar.close()

    asyncio.run(enqueue())
    with smsc(tmp_path, receipts=False) as sim:
        extra = ["--smsc", sim.address, "--no-recorder", "--sms-retry-delay", "1"]
        with api_server(redis_url, tmp_path / "a", extra=extra) as first:
            deadline = time.monotonic() + 30
            while len(sim.messages()) < total // 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            first.stop(signal.SIGKILL)
        sent_by_first = len(sim.messages())
        with api_server(redis_url, tmp_path / "b", extra=extra) as second:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = Counter(v.split("|")[0] for v in r.hgetall(keys.sms_state("kill")).values())
                if states["sent"] + states["unknown"] == total:
                    break
                time.sleep(0.1)
            second.stop()
        msgs = sim.messages()
    to = Counter(m["to"] for m in msgs)
    assert 0 < sent_by_first < total
    assert max(to.values()) == 1, [n for n, c in to.items() if c > 1][:5]  # never twice
    assert states["sent"] + states["unknown"] == total, states
    assert states["unknown"] <= 10  # at most a window's worth was with the SMSC when the sender died
    assert len(msgs) >= total - states["unknown"]
    r.close()

"""The asyncio adapter over the call queue keeps the loop free while Redis works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dialer_core as dc

from store.queue import Queue


def test_claim_and_complete_from_asyncio(redis_url: str, tmp_path: Path) -> None:
    p = tmp_path / "l.txt"
    p.write_text("".join(f"+8490{i:07d}\n" for i in range(20_000)))
    dc.import_contacts(redis_url, p, "aio", country="VN")

    async def main() -> tuple[int, int]:
        client = await Queue.open(redis_url, "aio", max_attempts=2, retry_delay_s=3600.0, retry_on=["no_answer", "busy"])
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        done = 0
        while claims := await client.claim(2000):
            done += (await client.complete([dc.Completion(c.number, c.token, "answered") for c in claims])).count("final")
        stop.set()
        await t
        return done, ticks

    done, ticks = asyncio.run(main())
    assert done == 20_000
    assert ticks > 10  # the loop ran other tasks while the queue worked


def test_the_blocking_call_detector_is_armed() -> None:
    """A blocking call the project's code makes on the loop itself is caught: the detector is
    really on (reading a script file from a coroutine: the runtime does it in a thread)."""
    import blockbuster

    from sip_gateway.ivr.script import Script

    async def blocking() -> None:
        Script.load("seed_survey")

    try:
        asyncio.run(blocking())
    except blockbuster.BlockingError:
        return
    raise AssertionError("blockbuster did not flag a file read on the event loop")

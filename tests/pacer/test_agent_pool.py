"""The agent pool against a real Redis: a reservation cut short at any point (the connect
limit's `wait_for` cancels it) never leaves the agent holding a call nobody will close."""

from __future__ import annotations

import asyncio

import dialer_core

from pacer.agents import AgentPool
from store import Store
from store.agents import AgentState

RECORD = {"campaign": "c", "number": "+84901000001", "token": "1", "partition": "0", "attempts": "0"}


async def pool_of(store: Store, agents: list[str]) -> AgentPool:
    """A pool of campaign c, whose `agents` joined it, synced once."""
    for a in agents:
        await store.agents.create({"id": a, "name": a, "sip_uri": f"sip:{a}@127.0.0.1:5090"})
        await store.agents.join("c", a)
    pool = AgentPool(store.agents, "c", dialer_core.PacingEngine("predictive"))
    await pool.sync()
    return pool


def test_a_reservation_cancelled_at_any_await_leaves_no_open_call(redis_url: str) -> None:
    """Before the fix, the runtime freed only an agent that `reserve()` had returned: cancelled
    after the agent's call was opened in Redis but before it returned, the agent kept an open
    call for ever (and stayed 'talking' in the pool). Every cancellation point is tried."""

    async def scenario() -> list[tuple[int, str | None, AgentState]]:
        store = Store(redis_url)
        pool = await pool_of(store, ["a1"])
        assert pool.states["a1"] is AgentState.READY
        seen = []
        record = RECORD
        for steps in range(12):
            call_id = f"c:0:{steps}"
            task = asyncio.create_task(pool.reserve(call_id, record))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            # What the runtime does when the call ends unconnected, whatever reserve() returned.
            await pool.release(call_id)
            seen.append((steps, await store.agents.current_call("a1"), pool.states["a1"]))
            assert await store.agents.call_or_none(call_id) is None
        await store.close()
        return seen

    seen = asyncio.run(scenario())
    assert [s for s in seen if s[1] is not None or s[2] is not AgentState.READY] == []


def test_the_longest_idle_ready_agent_is_reserved_and_never_twice(redis_url: str) -> None:
    async def scenario() -> None:
        store = Store(redis_url)
        pool = await pool_of(store, ["a1", "a2"])
        pool.ready_since = {"a1": 5.0, "a2": 1.0}
        record = RECORD
        first = await pool.reserve("c:0:1", record)
        second = await pool.reserve("c:0:2", record)
        third = await pool.reserve("c:0:3", record)
        assert first is not None and first.id == "a2" and second is not None and second.id == "a1" and third is None
        assert (await store.agents.call("c:0:1"))["agent"] == "a2"
        await pool.release("c:0:1")
        assert await store.agents.current_call("a2") is None and pool.states["a2"] is AgentState.READY
        await store.close()

    asyncio.run(scenario())


def test_an_agent_taken_off_the_campaigns_list_gets_no_more_calls(redis_url: str) -> None:
    async def scenario() -> None:
        store = Store(redis_url)
        pool = await pool_of(store, ["a1", "a2"])
        assert sorted(pool.ready_agents()) == ["a1", "a2"]
        pool.allowed = {"a2"}  # the campaign's agents list changed
        await pool.sync()
        assert pool.ready_agents() == ["a2"]
        record = RECORD
        got = await pool.reserve("c:0:1", record)
        assert got is not None and got.id == "a2"
        assert await pool.reserve("c:0:2", record) is None  # a1 is not offered
        await store.close()

    asyncio.run(scenario())

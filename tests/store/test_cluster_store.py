"""The store's classes on a Redis Cluster, with the same assertions as on one Redis: each test
runs on both (`url`). Writes that change keys of several hash slots (an agent joining a campaign,
a call closed with its answers, a campaign created, an SMS finished) go in steps
(`store/steps.py`); reads over several campaigns' streams, SCANs and the server's run id have
their cluster forms. The session's cluster is never flushed: every test uses ids of its own, and
reads the shared registries (tokens, nodes, the CDR stream) only for its own entries."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import dialer_core
import pytest

from store import Store, keys, tokens
from store.agents import Dial
from store.cdr import CallRecord
from store.connection import SyncClient, connect, connect_sync
from store.errors import Conflict, Missing, NotAllowed, Unavailable
from tests.support.redis_cluster import RedisCluster

T = TypeVar("T")
SPEC = {"mode": "predictive", "partitions": 2, "pacing": {"target_abandon": 0.03}}


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return request.getfixturevalue("redis_cluster").url


@pytest.fixture
def raw(url: str) -> Iterator[SyncClient]:
    """A blocking client of the same Redis or cluster, to check what the store wrote."""
    client = connect_sync(url)
    yield client
    client.close()


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def on(url: str, fn: Callable[[Store], Awaitable[T]], **kwargs: Any) -> T:
    async def go() -> T:
        store = Store(url, **kwargs)
        try:
            return await fn(store)
        finally:
            await store.close()
    return asyncio.run(go())


async def events(store: Store, cid: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f["type"], json.loads(f["data"])) for _, f in await store.campaigns.events_range(cid, "0", 1000)]


def cdrs(raw: SyncClient, cid: str) -> list[dict[str, Any]]:
    """The CDR records of campaign `cid`, oldest first."""
    rows = [json.loads(f["r"]) for _, f in raw.xrevrange(keys.CDR_STREAM, count=5000)]
    return [r for r in reversed(rows) if r["campaign"] == cid]


# -- agents ---------------------------------------------------------------------------------------------


def test_an_agent_joins_takes_a_break_leaves_and_is_deleted(url: str, raw: SyncClient) -> None:
    aid, c1, c2 = uid("a"), uid("c"), uid("c")

    async def scenario(store: Store) -> None:
        agents = store.agents
        await agents.create({"id": aid, "name": "Ann", "sip_uri": "sip:ann@127.0.0.1:5090"})
        with pytest.raises(Conflict):
            await agents.create({"id": aid, "name": "Ann again"})
        last = await agents.newest_change()
        await agents.join(c1, aid)
        await agents.join(c2, aid)
        a = await agents.get(aid)
        assert (a["name"], a["campaigns"], a["call"], a["away"]) == ("Ann", sorted([c1, c2]), None, False)
        assert await agents.present(c1) == {aid} and await agents.present_count(c2) == 1
        assert await agents.sip_uris([aid, uid("nobody")]) == {aid: "sip:ann@127.0.0.1:5090"}

        await agents.set_away(aid, True)
        assert (await agents.get(aid))["away"] is True
        flags = await agents.flags([aid])
        assert flags[aid].away is True and flags[aid].call is None
        await agents.set_away(aid, False)
        assert (await agents.flags([aid]))[aid].away is False

        await agents.leave(c1, aid)
        assert await agents.present(c1) == set() and await agents.present(c2) == {aid}
        assert (await agents.get(aid))["campaigns"] == [c2]
        assert await events(store, c1) == [
            ("agent", {"agent": aid, "joined": True}), ("agent", {"agent": aid, "away": True}),
            ("agent", {"agent": aid, "away": False}), ("agent", {"agent": aid, "joined": False})]
        assert [e[1] for e in await events(store, c2)] == [
            {"agent": aid, "joined": True}, {"agent": aid, "away": True}, {"agent": aid, "away": False}]
        changes = await agents.changes_after(last, block_ms=100, count=1000)
        assert [a for _, a in changes if a == aid] == [aid] * 5  # 2 joins, 2 breaks, 1 leave

        await agents.leave(c2, aid)
        await agents.delete(aid)
        with pytest.raises(Missing):
            await agents.get(aid)
        assert aid not in [a["id"] for a in await agents.all()]
        after = await agents.changes_after(changes[-1][0], block_ms=100, count=1000)
        assert [a for _, a in after if a == aid] == [aid] * 2

    on(url, scenario)
    assert raw.exists(keys.agent(aid)) == 0 and raw.hget(keys.AGENTS, aid) is None


def test_an_agents_call_opens_once_and_closes_with_its_answers(url: str, raw: SyncClient) -> None:
    aid, cid = uid("a"), uid("c")
    call1, call2, number = f"{cid}:0:1", f"{cid}:0:2", "+84901000001"
    record = {"campaign": cid, "number": number, "token": "7", "partition": "0"}

    async def scenario(store: Store) -> None:
        agents = store.agents
        await agents.create({"id": aid, "name": "Bo"})
        assert await agents.open_call(aid, call1, record, {"agent": aid, "call_id": call1}) is True
        assert await agents.open_call(aid, call2, record, {"agent": aid, "call_id": call2}) is False
        assert await agents.current_call(aid) == call1
        rec = await agents.call(call1)
        assert (rec["campaign"], rec["number"], rec["agent"], rec["token"]) == (cid, number, aid, "7")
        with pytest.raises(Missing):
            await agents.call(call2)  # refused: nothing written
        await agents.set_dial(call1, Dial.CONNECTED, 12.5)
        await agents.set_leg(call1, "leg-1")
        rec = await agents.call(call1)
        assert (rec["dial"], rec["dial_at"], rec["leg"]) == ("connected", "12.5", "leg-1")
        assert set(await agents.open_records([call1, call2])) == {call1}

        # Another call's close changes nothing of the agent's.
        assert await agents.close_call(call2, aid, if_open=True) is False
        assert await agents.current_call(aid) == call1
        closed = await agents.close_call(call1, aid, campaign=cid, number=number, answers={"q1": "yes"},
                                         event={"call_id": call1, "outcome": "sale"})
        assert closed is True
        assert await agents.current_call(aid) is None and await agents.call_or_none(call1) is None
        assert await agents.answers(cid, [number, "+84901000009"]) == [{"q1": "yes"}, None]
        assert await events(store, cid) == [("call", {"agent": aid, "call_id": call1}),
                                            ("disposition", {"call_id": call1, "outcome": "sale"})]
        # A reservation whose caller never learnt the agent: closed by the record's agent.
        assert await agents.open_call(aid, call2, record, {"agent": aid, "call_id": call2}) is True
        assert await agents.close_call(call2) is True
        assert await agents.current_call(aid) is None

    on(url, scenario)
    assert raw.exists(keys.call(call1), keys.call(call2)) == 0


# -- tokens ---------------------------------------------------------------------------------------------


def test_tokens_are_added_listed_and_revoked(url: str) -> None:
    agent = uid("a")
    d1, d2, d3 = (uid("d") + uuid.uuid4().hex for _ in range(3))
    mine = {d1, d2, d3}

    async def scenario(store: Store) -> None:
        t = store.tokens
        await t.add(d1, {"id": d1[:12], "role": "admin", "name": "x", "created_at": "2026-01-01T00:00:00"})
        await t.add(d2, {"id": d2[:12], "role": "agent", "agent": agent, "created_at": "2026-01-01T00:00:01"})
        assert json.loads(await t.record(d1) or "{}")["role"] == "admin"
        assert [r["id"] for r in await t.all() if r["id"] in {d[:12] for d in mine}] == [d1[:12], d2[:12], d3[:12]]
        assert await t.revoke_agent(agent) == [d2[:12]]
        assert await t.record(d2) is None
        assert await t.revoke(d1[:12]) is True and await t.record(d1) is None
        assert await t.revoke(uid("none")) is False

    # The command line's blocking client, on the same URL.
    tokens.add_sync(url, d3, {"id": d3[:12], "role": "ops", "name": "cli", "created_at": "2026-01-01T00:00:02"})
    on(url, scenario)
    assert [r["id"] for r in tokens.all_sync(url) if r["id"] in {d[:12] for d in mine}] == [d3[:12]]
    assert tokens.revoke_sync(url, d3[:12]) is True
    assert tokens.revoke_sync(url, d3[:12]) is False


# -- campaigns ------------------------------------------------------------------------------------------


def test_a_campaign_is_created_moved_through_its_lifecycle_and_deleted(url: str, raw: SyncClient) -> None:
    cid = uid("c")

    async def scenario(store: Store) -> None:
        c = store.campaigns
        made = await c.create(cid, SPEC, "alice", holder="alice")
        assert (made["state"], made["revision"], made["created_by"], made["mode"]) == ("pending_approval", 1, "alice",
                                                                                      "predictive")
        with pytest.raises(Conflict):
            await c.create(cid, SPEC, "bob")
        assert cid in await c.ids() and cid in [x["id"] for x in await c.all("pending_approval")]
        with pytest.raises(NotAllowed):
            await c.transition(cid, "approve", "alice", not_creator=True, holder="alice")
        await c.transition(cid, "approve", "bob", not_creator=True, holder="bob")
        assert (await c.get(cid))["approved_by"] == "bob"
        await c.transition(cid, "start", "bob")
        view = await c.view(cid)
        assert view is not None and (view.state.value, view.revision) == ("running", 3)
        assert cid in [v.id for v in await c.dialing()]
        with pytest.raises(Conflict) as refused:
            await c.transition(cid, "approve", "bob")
        assert refused.value.state == "running"
        await c.transition(cid, "pause", "bob")
        await c.transition(cid, "resume", "bob")
        rev = await c.update_spec(cid, 5, {**SPEC, "partitions": 3}, "updated", {"by": "bob"})
        assert rev == 6 and (await c.get(cid))["partitions"] == 3
        with pytest.raises(Conflict):
            await c.update_spec(cid, 5, SPEC, "updated", {"by": "bob"})
        with pytest.raises(Conflict):
            await c.delete(cid)  # running
        await c.transition(cid, "stop", "bob")
        with pytest.raises(Missing):
            await c.transition(uid("c"), "stop", "bob")

        got = await events(store, cid)
        assert [t for t, _ in got] == ["created", "state", "state", "state", "state", "updated", "state"]
        assert [(d["action"], d["from"], d["state"]) for t, d in got if t == "state"] == [
            ("approve", "pending_approval", "approved"), ("start", "approved", "running"),
            ("pause", "running", "paused"), ("resume", "paused", "running"), ("stop", "running", "stopped")]
        newest = await c.newest_event(cid)
        assert await c.events_after(cid, newest, block_ms=50, count=10) == []
        published = await c.publish(cid, "note", {"n": 1})
        assert await c.events_after(cid, newest, block_ms=50, count=10) == [
            (published, {"type": "note", "data": '{"n": 1}'})]
        await c.write_live(cid, 0, {"dialling": 4})
        assert await c.live(cid) == {"dialling": 4, "partitions": 1}
        await c.write_live(cid, 1, {"dialling": 3})
        assert await c.live(cid) == {"dialling": 3, "partitions": 2}  # not a figure merge_live adds up

        assert await c.delete(cid) == 3
        with pytest.raises(Missing):
            await c.get(cid)
        assert cid not in await c.ids() and await c.view(cid) is None

    on(url, scenario)
    assert raw.exists(*keys.campaign_control_keys(cid)) == 0


def test_purge_removes_every_queue_key_of_every_partition(url: str, raw: SyncClient,
                                                          request: pytest.FixtureRequest) -> None:
    """On a cluster the partitions' keys sit on several primaries: the SCAN must visit each."""
    cid, other = uid("c"), uid("c")
    partitions, suffixes = 6, [":ready", ":retry", ":meta", ":lh", ":k:5"]
    written = [keys.queue_meta(cid)]
    for p in range(partitions):
        base = dialer_core.partition_key(cid, p, partitions=partitions)
        written += [base + s for s in suffixes] + [keys.partition_runs(cid, p, partitions=partitions)]
    base0 = dialer_core.partition_key(cid, 0, partitions=partitions)
    written += [base0 + f":k:{i}" for i in range(6, 1206)]  # past one batch
    kept = [dialer_core.partition_key(other, 0, partitions=1) + ":ready", keys.partition_owner(cid, 0)]
    with raw.pipeline(transaction=False) as pipe:
        for k in written + kept:
            pipe.set(k, "1")
        pipe.execute()
    if "redis_cluster" in request.fixturenames:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        assert len({cluster.primary_of(dialer_core.partition_key(cid, p, partitions=partitions))
                    for p in range(partitions)}) == 3

    removed = on(url, lambda store: store.campaigns.purge_queue(cid, partitions))
    assert removed == len(written)
    assert sum(raw.exists(k) for k in written) == 0
    assert raw.exists(*kept) == len(kept)


def test_events_of_several_campaigns_are_read_together(url: str) -> None:
    c1, c2, c3 = uid("c"), uid("c"), uid("c")

    async def scenario(store: Store) -> None:
        c = store.campaigns
        e1 = await c.publish(c1, "note", {"n": 1})
        e2 = await c.publish(c2, "note", {"n": 2})
        e3 = await c.publish(c3, "note", {"n": 3})
        got = await c.events_of({c1: "0", c2: "0", c3: e3}, block_ms=500, count=100)
        assert {cid: [i for i, _ in es] for cid, es in got.items()} == {c1: [e1], c2: [e2]}

        waited = time.monotonic()
        assert await c.events_of({c1: e1, c2: e2, c3: e3}, block_ms=200, count=100) == {}
        assert time.monotonic() - waited >= 0.15

        async def later() -> str:
            await asyncio.sleep(0.2)
            return await c.publish(c3, "note", {"n": 4})

        waited = time.monotonic()
        reader = asyncio.create_task(c.events_of({c1: e1, c2: e2, c3: e3}, block_ms=5000, count=100))
        e4 = await later()
        got = await reader
        assert {cid: [i for i, _ in es] for cid, es in got.items()} == {c3: [e4]}
        assert time.monotonic() - waited < 2.0  # as soon as it came, not at the end of the wait

    # The feed's own client has one connection (on a cluster: one per node).
    on(url, scenario, max_connections=2)


# -- SMS --------------------------------------------------------------------------------------------------


def test_an_sms_is_requested_once_finished_and_its_receipt_recorded(url: str, raw: SyncClient) -> None:
    cid, n1, n2, msg_id = uid("c"), "+84901000001", "+84901000002", uid("m")

    async def scenario(store: Store) -> None:
        sms = store.sms
        assert await sms.request(cid, n1, "Thank you", "Operator") is True
        assert await sms.request(cid, n1, "Thank you again", "Operator") is False
        assert await sms.request(cid, n2, "Thank you", "Operator") is True
        assert await sms.state(cid, n1) == ("queued", "") and cid in await sms.campaigns()
        await sms.ensure_group(cid)
        await sms.ensure_group(cid)  # BUSYGROUP is no error
        got = await sms.read(cid, "s1", 10, 100)
        assert [(f["number"], f["text"], f["sender"]) for _, f in got] == [
            (n1, "Thank you", "Operator"), (n2, "Thank you", "Operator")]
        (e1, _), (e2, _) = got

        await sms.set_state(cid, n1, "sending", "1@s1")
        await sms.final(cid, e1, n1, "sent", msg_id)
        assert await sms.state(cid, n1) == ("sent", msg_id)
        # Only the second, not acknowledged, is left for another sender.
        assert [i for i, _ in await sms.reclaim(cid, "s2", 0, 10)] == [e2]

        await sms.remember_id(msg_id, cid, n1)
        assert await sms.known_id(msg_id) is True
        assert await sms.receipt(msg_id, "DELIVRD") == "delivered"
        assert await sms.state(cid, n1) == ("delivered", "DELIVRD")
        assert await sms.known_id(msg_id) is False and await sms.receipt(msg_id, "DELIVRD") is None
        await sms.ack(cid, e2)
        assert await sms.reclaim(cid, "s3", 0, 10) == []

    on(url, scenario)
    assert [(r["kind"], r["number"], r["sms_status"]) for r in cdrs(raw, cid)] == [
        ("sms", n1, "sent"), ("sms", n1, "delivered")]


# -- the CDR stream ---------------------------------------------------------------------------------------


def test_cdr_records_are_appended_read_claimed_and_acknowledged(url: str, raw: SyncClient) -> None:
    cid, archive = uid("c"), uid("arch")
    records = [CallRecord(campaign=cid, number=f"+8490100000{i}", outcome="answered", attempt=1) for i in range(3)]

    async def scenario(store: Store) -> None:
        cdr = store.cdr
        await cdr.ensure_group(archive)
        await cdr.ensure_group(archive)
        first = await cdr.append(records[0])
        rest = await cdr.append(*records[1:])
        assert len(first) == 1 and len(rest) == 2
        # The group starts at the stream's beginning (other tests' records too, on the cluster).
        read: list[str] = []
        while batch := await cdr.read(archive, "rec1", 1000, 50):
            read += [i for i, f in batch if json.loads(f["r"])["campaign"] == cid]
        assert read == first + rest
        start, claimed = "0-0", []
        while True:
            start, entries = await cdr.claim_pending(archive, "rec2", start, 1000)
            claimed += [i for i, _ in entries]
            if start == "0-0":
                break
        assert set(read) <= set(claimed)
        await cdr.ack(archive, claimed)

        assert await cdr.hold(archive, "rec1", "/tmp/a.db") is True
        assert await cdr.hold(archive, "rec2", "/tmp/a.db") is False
        await cdr.let_go(archive, "rec2")  # not its lease: nothing happens
        assert await cdr.hold(archive, "rec2", "/tmp/a.db") is False
        await cdr.let_go(archive, "rec1")
        assert await cdr.hold(archive, "rec2", "/tmp/a.db") is True

    on(url, scenario)
    assert raw.xpending(keys.CDR_STREAM, f"archive:{archive}")["pending"] == 0
    assert json.loads(raw.hget(keys.CDR_ARCHIVES, archive) or "{}")["path"] == "/tmp/a.db"
    assert [r["number"] for r in cdrs(raw, cid)] == [r.number for r in records]


# -- nodes, partition leases, dial sets ------------------------------------------------------------------


def test_nodes_partition_leases_and_incarnations(url: str, raw: SyncClient) -> None:
    cid, n1, n2, inc1, inc2 = uid("c"), uid("n"), uid("n"), uid("i"), uid("i")

    async def scenario(store: Store) -> None:
        nodes = store.nodes
        assert await nodes.announce(n1, 60_000) >= 1
        before = await nodes.announce(n1, 60_000)
        assert await nodes.announce(n2, 60_000) == before + 1
        await nodes.leave(n1)

        assert await nodes.take(cid, 0, n1) is True
        assert await nodes.take(cid, 0, n2) is False
        assert await nodes.take(cid, 0, n1) is True  # kept (renewed)
        assert await nodes.take(cid, 1, n2) is True  # another partition
        await nodes.release(cid, 0, n2)  # not n2's: nothing happens
        assert await nodes.owner(cid, 0) == n1
        await nodes.release(cid, 0, n1)
        assert await nodes.owner(cid, 0) is None
        assert await nodes.take(cid, 0, n2) is True and await nodes.owner(cid, 0) == n2

        await nodes.alive(inc1, n1)
        assert await nodes.living([inc1, inc2]) == {inc1}
        await nodes.gone(inc1)
        assert await nodes.living([inc1, inc2]) == set() and await nodes.living([]) == set()
        await nodes.register_run(cid, 0, inc1, '{"node": "n1"}', partitions=2)
        await nodes.register_run(cid, 0, inc2, '{"node": "n2"}', partitions=2)
        assert await nodes.runs(cid, 0, partitions=2) == {inc1: '{"node": "n1"}', inc2: '{"node": "n2"}'}
        await nodes.forget_runs(cid, 0, [inc1], partitions=2)
        assert await nodes.runs(cid, 0, partitions=2) == {inc2: '{"node": "n2"}'}

    on(url, scenario)
    assert raw.zscore(keys.NODES, n1) is None and raw.zscore(keys.NODES, n2) is not None
    assert 0 < raw.pttl(keys.partition_owner(cid, 0)) <= 15_000


def test_handed_calls_are_dialled_once_by_the_owner_of_the_partition(url: str) -> None:
    cid, node, call1, call2 = uid("c"), uid("n"), uid("call"), uid("call")

    async def scenario(store: Store) -> None:
        d = store.dialsets
        now = time.time()
        await d.offer(cid, 0, call1, None)  # when the agent says
        await d.offer(cid, 0, call2, now - 1)
        assert await d.take_due(cid, 0, now, node) == [call2]
        assert await d.dial_now(cid, 0, call1, now) is True
        assert await store.nodes.take(cid, 0, node)
        assert await d.take_due(cid, 0, now + 1, node) == [call1]
        # Being placed by a live owner: neither dialled again nor withdrawn.
        assert await d.dial_now(cid, 0, call1, now) is False and await d.withdraw(cid, 0, call1) is False
        await store.nodes.release(cid, 0, node)
        # Its node lost the partition: the call is free again.
        assert await d.withdraw(cid, 0, call1) is True
        await d.placed(cid, 0, call2)
        assert await d.withdraw(cid, 0, call2) is True

    on(url, scenario)


# -- what only a cluster has -------------------------------------------------------------------------------


def test_ping_and_the_server_id_name_every_primary(url: str, request: pytest.FixtureRequest) -> None:
    on(url, lambda store: store.ping())  # every primary answers, on a cluster
    ids = on(url, lambda store: asyncio.gather(store.server_id(), store.server_id()))
    assert ids[0] == ids[1] and ids[0]
    if "redis_cluster" in request.fixturenames:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        run_ids = []
        for address in cluster.primaries():
            with next(n for n in cluster.nodes if n.address == address).client() as c:
                run_ids.append(c.info("server")["run_id"])
        assert ids[0] == ",".join(sorted(run_ids)) and len(run_ids) == 3


def test_a_cluster_client_waits_for_a_free_connection_instead_of_failing(redis_cluster: RedisCluster) -> None:
    """redis-py's cluster client fails a command past `max_connections` per node (a plain
    `RedisCluster(max_connections=2)` fails most of these 200 with `MaxConnectionsError`); the
    store's waits (as its pool does on one Redis), up to its `timeout`."""
    cid = uid("c")
    key = keys.present(cid)

    async def scenario() -> None:
        store = Store(redis_cluster.url, max_connections=2)
        try:
            # Two connections a node: redis-py's own client fails the rest (MaxConnectionsError).
            assert store.agents.redis.get_connection_kwargs()["max_connections"] == 2
            await store.agents.redis.sadd(key, "a1")
            assert await asyncio.gather(*(store.agents.present_count(cid) for _ in range(200))) == [1] * 200
        finally:
            await store.close()
        client = connect(redis_cluster.url, max_connections=1, timeout=0.3)
        try:
            reader = asyncio.create_task(client.xread({keys.events(uid("c")): "$"}, block=1500))
            await asyncio.sleep(0.1)
            waited = time.monotonic()
            with pytest.raises(Unavailable, match="no Redis connection free"):
                await client.get(key)
            assert 0.25 <= time.monotonic() - waited < 1.0
            assert await reader == []
        finally:
            await client.aclose()

    asyncio.run(scenario())

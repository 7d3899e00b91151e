"""Campaigns: their records, their lifecycle, their event streams and live figures.

A campaign's record is one hash (`keys.campaign`): its spec (JSON, validated by the API before it
is stored), state, revision and who created and approved it. Every lifecycle move, whether an
ops user asks for it through the API or the runtime finds the list exhausted, is one script
(`lua/transition.lua`) that checks the current state, changes it and writes the `state` event to
the campaign's stream: the moves are decided here, once (`TRANSITIONS`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, cast

from store import keys
from store.connection import Client, is_cluster
from store.errors import Conflict, Missing, NotAllowed
from store.scripts import Scripts
from store.steps import Steps, unlink

log = logging.getLogger("dialer.store")

#: Events kept in each campaign's stream (SSE clients resuming with Last-Event-ID find these).
EVENTS_KEPT: Final = 10_000
#: A pacer's live figures expire this long after their last write: a dead pacer shows none.
LIVE_TTL_S: Final = 5
#: Live figures of several partitions' pacers: what adds up (counts, rates per second), and
#: the estimates averaged over the pacers, weighted by the calls each dialled.
_LIVE_SUMMED: Final = ("window_live_answers", "window_abandons", "abandon_budget", "dialed", "answered", "connected",
                       "abandoned", "calls_ringing", "calls_waiting", "calls_connected", "calls_closing",
                       "calls_in_progress", "cps", "decisions")
_LIVE_WEIGHTED: Final = ("dial_ratio", "live_answer_rate", "answer_delay_median_s", "answer_delay_p90_s",
                         "talk_time_mean_s", "wrap_time_mean_s")
#: On a cluster, how often `events_of` reads the streams of several campaigns while none has
#: news (the delay an event may wait there before it is read).
CLUSTER_POLL_S: Final = 0.05

_Value = bytes | bytearray | memoryview | str | int | float
_Mapping = dict[_Value, _Value]  # what redis-py's hset(mapping=) is typed to take
_Key = bytes | str | memoryview


class State(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"


#: States in which a campaign's partitions are owned by dialing nodes.
DIALING: Final = (State.RUNNING, State.PAUSED)
#: States a campaign never leaves.
FINISHED: Final = (State.STOPPED, State.COMPLETED)


@dataclass(frozen=True)
class Transition:
    """A lifecycle action: the states it may start from and the state it leads to."""

    action: str
    allowed: tuple[State, ...]
    to: State


TRANSITIONS: Final = {
    t.action: t
    for t in (
        Transition("approve", (State.PENDING_APPROVAL,), State.APPROVED),
        Transition("start", (State.APPROVED,), State.RUNNING),
        Transition("pause", (State.RUNNING,), State.PAUSED),
        Transition("resume", (State.PAUSED,), State.RUNNING),
        Transition("stop", (State.APPROVED, State.RUNNING, State.PAUSED), State.STOPPED),
        # The runtime's: the list is exhausted or the end time passed.
        Transition("complete", (State.RUNNING, State.PAUSED), State.COMPLETED),
    )
}
#: The actions ops users take through the API (`complete` is the runtime's).
API_ACTIONS: Final = tuple(a for a in TRANSITIONS if a != "complete")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class CampaignView:
    """One revision of a campaign as the runtime needs it."""

    id: str
    state: State
    revision: int
    spec: dict[str, Any]

    @property
    def mode(self) -> str:
        return str(self.spec["mode"])

    @property
    def pacing(self) -> dict[str, Any]:
        return dict(self.spec["pacing"])


Entries = list[tuple[str, dict[str, str]]]


class Campaigns:
    """Campaign records and their events, on one client."""

    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self._scripts = Scripts(redis)

    # -- records ------------------------------------------------------------------------------

    async def create(self, cid: str, spec: dict[str, Any], actor: str, holder: str | None = None) -> dict[str, Any]:
        """A new campaign, pending approval; `holder` is the person behind `actor` (who may
        then not approve it)."""
        now = now_iso()
        record = {"spec": json.dumps(spec), "state": State.PENDING_APPROVAL.value, "created_at": now, "updated_at": now,
                  "created_by": actor, "created_holder": holder or actor, "revision": "1"}
        key = keys.campaign(cid)
        # HSETNX on the spec field claims the id; only its winner writes the rest.
        if not await self.redis.hsetnx(key, "spec", record["spec"]):
            raise Conflict(f"campaign {cid} already exists")
        # Steps, in this order on a cluster: the registry first, then the record with its event
        # (one slot). Until the record has its `state` no read shows the campaign (as after a
        # crash between the HSETNX and this write), so the registry may name it first; the other
        # way round a crash would leave a whole campaign that no list shows.
        steps = Steps(self.redis, atomic=True)
        steps.step().zadd(keys.CAMPAIGNS, {cid: int(time.time() * 1000)})
        own = steps.step()
        own.hset(key, mapping=cast(_Mapping, record))
        own.xadd(keys.events(cid), {"type": "created", "data": json.dumps({"state": State.PENDING_APPROVAL.value, "by": actor})},
                 maxlen=EVENTS_KEPT, approximate=True)
        await steps.run()
        return await self.get(cid)

    async def get(self, cid: str) -> dict[str, Any]:
        raw = cast(dict[str, str], await self.redis.hgetall(keys.campaign(cid)))
        if not raw or "state" not in raw:
            raise Missing(f"no campaign {cid!r}")
        return _campaign(cid, raw)

    async def ids(self) -> list[str]:
        return [str(i) for i in await self.redis.zrange(keys.CAMPAIGNS, 0, -1)]

    async def all(self, state: str | None = None) -> list[dict[str, Any]]:
        ids = await self.ids()
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(keys.campaign(cid))
            rows = await pipe.execute()
        out = [_campaign(cid, raw) for cid, raw in zip(ids, rows) if raw and "state" in raw]
        return [c for c in out if state is None or c["state"] == state]

    async def view(self, cid: str) -> CampaignView | None:
        """The campaign as the runtime follows it (None: deleted)."""
        raw = cast(dict[str, str], await self.redis.hgetall(keys.campaign(cid)))
        if not raw or "state" not in raw:
            return None
        return CampaignView(id=cid, state=State(raw["state"]), revision=int(raw["revision"]), spec=json.loads(raw["spec"]))

    async def dialing(self) -> list[CampaignView]:
        """The campaigns whose partitions dialing nodes own (running or paused)."""
        ids = await self.ids()
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hmget(keys.campaign(cid), ["state", "revision", "spec"])
            rows = cast(list[list[str | None]], await pipe.execute())
        out = []
        for cid, (state, revision, spec) in zip(ids, rows):
            if state in DIALING and spec is not None:
                out.append(CampaignView(id=cid, state=State(state), revision=int(revision or 0), spec=json.loads(spec)))
        return out

    async def update_spec(self, cid: str, revision: int, spec: dict[str, Any], event: str, data: dict[str, Any]) -> int:
        """Store `spec` if the campaign is still at `revision`; raise `Conflict` if it moved."""
        status, rev = await self._scripts.run(
            "update_spec", [keys.campaign(cid), keys.events(cid)],
            [str(revision), json.dumps(spec), now_iso(), event, json.dumps(data), EVENTS_KEPT])
        if status == "missing":
            raise Missing(f"no campaign {cid!r}")
        if status == "moved":
            raise Conflict(f"campaign {cid} changed meanwhile (revision {rev}); retry")
        return int(rev)

    async def transition(self, cid: str, action: str, actor: str, *, not_creator: bool = False,
                         holder: str | None = None, detail: dict[str, Any] | None = None) -> bool:
        """Take a lifecycle action (`TRANSITIONS`). Raises `Missing`, `Conflict` (naming the
        state it is in) or `NotAllowed` (the approver created it, with `not_creator`)."""
        t = TRANSITIONS[action]
        event = {"action": action, "state": t.to.value, "by": actor, **(detail or {})}
        status, state, _ = await self._scripts.run(
            "transition", [keys.campaign(cid), keys.events(cid)],
            [",".join(t.allowed), t.to.value, now_iso(), actor, "not-creator" if not_creator else "", json.dumps(event),
             EVENTS_KEPT, holder or actor])
        if status == "missing":
            raise Missing(f"no campaign {cid!r}")
        if status == "conflict":
            raise Conflict(f"campaign {cid} is {state}: cannot {action} (allowed from {', '.join(t.allowed)})", state)
        if status == "forbidden":
            raise NotAllowed(f"campaign {cid} was created by this token's holder (with this token or another one): "
                             "another supervisor or an admin approves it")
        return True

    async def delete(self, cid: str) -> int:
        """Delete a campaign that is not dialing, and then its queue's keys (hundreds of
        thousands for a big list, removed a thousand at a time); answers how many queue keys
        went."""
        c = await self.get(cid)
        if c["state"] in DIALING:
            raise Conflict(f"campaign {cid} is {c['state']}: stop it before deleting it", c["state"])
        # One plain pipeline (on a cluster the two go to their nodes at once): either alone is a
        # state every read accepts - records nobody lists, or a listed id without a record,
        # which every list skips.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.CAMPAIGNS, cid)
            unlink(pipe, *keys.campaign_control_keys(cid))  # one slot
            await pipe.execute()
        return int(c["partitions"])

    async def purge_queue(self, cid: str, partitions: int) -> int:
        """Remove a deleted campaign's queue keys; answers how many. (On a cluster `scan_iter`
        scans every primary, and a partition's keys share one slot, so each UNLINK is one.)"""
        removed = int(await self.redis.unlink(keys.queue_meta(cid)))
        for p in range(partitions):
            batch: list[str] = []
            async for k in self.redis.scan_iter(match=keys.queue_partition_pattern(cid, p, partitions=partitions), count=10_000):
                batch.append(k)
                if len(batch) >= 1000:
                    removed += int(await self.redis.unlink(*batch))
                    batch = []
            if batch:
                removed += int(await self.redis.unlink(*batch))
        return removed

    # -- events and live figures ----------------------------------------------------------------

    async def publish(self, cid: str, kind: str, data: dict[str, Any]) -> str:
        return str(await self.redis.xadd(keys.events(cid), {"type": kind, "data": json.dumps(data)},
                                         maxlen=EVENTS_KEPT, approximate=True))

    async def newest_event(self, cid: str) -> str:
        """The id of the campaign's newest event ("0-0": none), to read what comes after it."""
        newest = cast(list[tuple[str, Any]], await self.redis.xrevrange(keys.events(cid), count=1))
        return newest[0][0] if newest else "0-0"

    async def events_after(self, cid: str, last: str, *, block_ms: int, count: int) -> Entries:
        """The campaign's events after `last`, waiting up to `block_ms` for one (this holds the
        connection: give each reader a client of its own)."""
        got = cast(list[tuple[str, Entries]], await self.redis.xread({keys.events(cid): last}, block=block_ms, count=count))
        return [e for _, es in got for e in es]

    async def events_range(self, cid: str, after: str, count: int) -> Entries:
        """Up to `count` kept events after `after` (exclusive), oldest first."""
        start = "-" if after in ("0", "0-0") else f"({after}"
        return cast(Entries, await self.redis.xrange(keys.events(cid), min=start, max="+", count=count))

    async def events_of(self, after: dict[str, str], *, block_ms: int, count: int) -> dict[str, Entries]:
        """The events of several campaigns after each one's id, in one read, waiting up to
        `block_ms` for one (this holds the connection).

        On a cluster one XREAD cannot span campaigns (each stream has its campaign's slot), and a
        blocking read per campaign would hold a connection each: their streams are read without
        blocking, in one pipeline (a round trip per node, in parallel), every `CLUSTER_POLL_S`
        until one has events or `block_ms` has passed."""
        streams: dict[_Key, _Key | int] = {keys.events(cid): last for cid, last in after.items()}
        by_key = {keys.events(cid): cid for cid in after}
        if len(streams) <= 1 or not is_cluster(self.redis):
            got = cast(list[tuple[str, Entries]], await self.redis.xread(streams, block=block_ms, count=count))
            return {by_key[k]: es for k, es in got}
        deadline = time.monotonic() + block_ms / 1000
        while True:
            async with self.redis.pipeline(transaction=False) as pipe:
                for k, last in streams.items():
                    pipe.xread({k: last}, count=count)
                replies = cast(list[list[tuple[str, Entries]]], await pipe.execute())
            found = {by_key[k]: es for got in replies for k, es in got if es}
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(CLUSTER_POLL_S, max(0.0, deadline - time.monotonic())))

    async def live(self, cid: str) -> dict[str, Any] | None:
        """The campaign's live figures: those of every partition's pacer written in the last
        `LIVE_TTL_S`, merged (`merge_live`); None while no pacer runs it."""
        raw = cast(dict[str, str], await self.redis.hgetall(keys.live(cid)))
        now = time.time()
        fresh = [f for f in (json.loads(v) for v in raw.values()) if now - float(f.get("at", 0.0)) <= LIVE_TTL_S]
        return merge_live(fresh) if fresh else None

    async def write_live(self, cid: str, partition: int, figures: dict[str, Any]) -> None:
        """Publish the live figures of the pacer dialling `partition`, for the API; they count
        for `LIVE_TTL_S` after this write (by the wall clock: nodes' clocks must agree to a
        second or so), so a pacer that died shows as none. One round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.live(cid), str(partition), json.dumps({**figures, "at": time.time()}))
            pipe.expire(keys.live(cid), LIVE_TTL_S)
            await pipe.execute()

    async def ping(self) -> None:
        await self.redis.ping()


def merge_live(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One campaign's live figures from those of its partitions' pacers (each a `live_figures`
    dict with its `at`): counts and rates added up, the abandon rate over the window recomputed
    from the added answers and abandons (as each engine computes its own), the estimates averaged
    weighted by the calls each pacer dialled, the rest (mode, last decision) from the newest;
    `partitions` says how many pacers reported. One pacer's figures come back as they were."""
    newest = max(parts, key=lambda f: float(f.get("at", 0.0)))
    out = {k: v for k, v in newest.items() if k != "at"}
    out["partitions"] = len(parts)
    if len(parts) == 1:
        return out

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    for k in _LIVE_SUMMED:
        if all(number(f.get(k)) for f in parts):
            out[k] = sum(f[k] for f in parts)
    for k in ("unanswered", "agents"):
        if all(isinstance(f.get(k), dict) for f in parts):
            out[k] = {name: sum(int(f[k].get(name, 0)) for f in parts) for name in newest[k]}
    if all(isinstance(f.get("observations"), list) for f in parts):
        out["observations"] = [sum(int(f["observations"][i]) for f in parts) for i in range(len(newest["observations"]))]
    if number(out.get("window_live_answers")) and number(out.get("window_abandons")):
        answers, abandons = out["window_live_answers"], out["window_abandons"]
        out["window_abandon_rate"] = out["abandon_rate"] = abandons / answers if answers else 0.0
    weights = [float(f.get("dialed") or 0) for f in parts]
    if not sum(weights):
        weights = [1.0] * len(parts)
    for k in _LIVE_WEIGHTED:
        if all(number(f.get(k)) for f in parts):
            out[k] = sum(w * f[k] for w, f in zip(weights, parts)) / sum(weights)
    return out


def add_event(pipe: Any, cid: str, kind: str, data: dict[str, Any]) -> None:
    """Queue a campaign event on a pipeline (written with the change it reports)."""
    pipe.xadd(keys.events(cid), {"type": kind, "data": json.dumps(data)}, maxlen=EVENTS_KEPT, approximate=True)


def _campaign(cid: str, raw: dict[str, str]) -> dict[str, Any]:
    spec = json.loads(raw["spec"])
    return {
        **spec, "id": cid, "state": raw["state"], "created_at": raw["created_at"], "updated_at": raw["updated_at"],
        "created_by": raw["created_by"], "approved_by": raw.get("approved_by"), "revision": int(raw["revision"]),
    }

"""Agents: the roster, joining and leaving campaigns, the next customer (manual and preview
modes) and the disposition of a call."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import dialer_core
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from api import events, schemas
from api.auth import Principal
from api.deps import Anyone, Ops, QueuesDep, StoreDep, bad_field
from pacer import transitions
from pacer.actions import execute
from store.agents import Dial
from store.errors import Conflict

log = logging.getLogger("dialer.api")
router = APIRouter(tags=["agents"])

# A customer handed to an agent stays leased to it this long; past that, the contact goes back to
# the queue and a late disposition answers 409.
AGENT_LEASE_S = 4 * 3600.0
HANDS_OUT = ("manual", "preview")


def _own(who: Principal, agent: str) -> None:
    """Agents act only for themselves; admins and supervisors for anyone."""
    if who.role == "agent" and who.agent != agent:
        raise HTTPException(403, f"this token speaks for agent {who.agent}, not {agent}")


@router.post("/v1/agents", status_code=201, response_model=schemas.Agent)
async def create_agent(body: schemas.AgentCreate, store: StoreDep, who: Ops) -> dict[str, Any]:
    await store.agents.create(body.model_dump())
    log.info("agent %s created by %s", body.id, who.label)
    return await store.agents.get(body.id)


@router.get("/v1/agents", response_model=schemas.AgentList)
async def list_agents(store: StoreDep, who: Ops) -> dict[str, Any]:
    return {"agents": await store.agents.all()}


@router.get("/v1/agents/{agent}", response_model=schemas.Agent)
async def get_agent(agent: str, store: StoreDep, who: Anyone) -> dict[str, Any]:
    _own(who, agent)
    return await store.agents.get(agent)


@router.post("/v1/campaigns/{cid}/agents/{agent}/join", response_model=schemas.Agent)
async def join(cid: str, agent: str, store: StoreDep, who: Anyone) -> dict[str, Any]:
    """Log the agent in to the campaign (allowed before its start time: nothing is dialled until
    then)."""
    _own(who, agent)
    c = await store.campaigns.get(cid)
    await store.agents.get(agent)
    if c["mode"] == "ivr":
        raise Conflict(f"campaign {cid} is agentless (ivr mode): agents do not join it", c["state"])
    if c["state"] in ("stopped", "completed"):
        raise Conflict(f"campaign {cid} is {c['state']}", c["state"])
    if c["agents"] and agent not in c["agents"]:
        raise HTTPException(403, f"agent {agent} does not take part in campaign {cid} (see the campaign's agents)")
    await store.agents.join(cid, agent)
    return await store.agents.get(agent)


@router.post("/v1/campaigns/{cid}/agents/{agent}/leave", response_model=schemas.Agent)
async def leave(cid: str, agent: str, store: StoreDep, who: Anyone) -> dict[str, Any]:
    _own(who, agent)
    await asyncio.gather(store.campaigns.get(cid), store.agents.get(agent))
    await store.agents.leave(cid, agent)
    return await store.agents.get(agent)


@router.get("/v1/me", response_model=schemas.Me)
async def me(who: Anyone) -> dict[str, Any]:
    """Who this token speaks for (the agent screen asks it at sign-in)."""
    return {"role": who.role, "name": who.name, "agent": who.agent}


@router.get("/v1/agents/{agent}/campaigns", response_model=schemas.AgentCampaigns)
async def agent_campaigns(agent: str, store: StoreDep, who: Anyone) -> dict[str, Any]:
    """The campaigns the agent may join (agent modes, not finished, the agent on its list if it
    has one), each with its survey, and whether the agent joined it."""
    _own(who, agent)
    a = await store.agents.get(agent)
    out = []
    for c in await store.campaigns.all():
        if c["mode"] == "ivr" or c["state"] in ("stopped", "completed") or (c["agents"] and agent not in c["agents"]):
            continue
        out.append({"id": c["id"], "name": c["name"], "mode": c["mode"], "state": c["state"],
                    "joined": c["id"] in a["campaigns"], "survey": c["survey"]})
    return {"campaigns": out}


@router.get("/v1/calls/{call_id}", response_model=schemas.CallView)
async def call_view(call_id: str, store: StoreDep, queues: QueuesDep, who: Anyone) -> dict[str, Any]:
    """An open call: the customer's number and attributes and the campaign's survey."""
    call = await store.agents.call(call_id)
    _own(who, call["agent"])
    c = await store.campaigns.get(call["campaign"])
    q = await queues.of(c)
    contact = await q.contact(call["number"]) or {}
    return {"call_id": call_id, "campaign": c["id"], "mode": c["mode"], "number": call["number"], "agent": call["agent"],
            "attempts": int(call.get("attempts", "0")), "attrs": contact.get("attrs") or {}, "survey": c["survey"],
            "connected": c["mode"] not in HANDS_OUT, "dial": call.get("dial"), "dial_at": _dial_at(call)}


def _dial_at(call: dict[str, str]) -> str | None:
    when = call.get("dial_at")
    if call.get("dial") != "waiting" or not when:
        return None
    return datetime.fromtimestamp(float(when), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@router.post("/v1/calls/{call_id}/dial", response_model=schemas.CallView, responses={409: {"model": schemas.Problem}})
async def dial(call_id: str, store: StoreDep, queues: QueuesDep, who: Anyone) -> dict[str, Any]:
    """Manual and preview modes: place the call to the customer now. The dialer that owns the
    campaign's partition dials it within a tick (while the campaign runs and a calling window is
    open) and puts the answered customer through to this agent's phone."""
    call = await store.agents.call(call_id)
    _own(who, call["agent"])
    c = await store.campaigns.get(call["campaign"])
    if c["mode"] not in HANDS_OUT or "dial" not in call:
        raise Conflict(f"call {call_id} was put through by the dialer: there is nothing to dial", c["state"])
    now = time.time()
    # A call whose dialing node died counts as not placed: it can be dialled again.
    if call["dial"] not in (Dial.WAITING, Dial.DIALLING) or not await store.dialsets.dial_now(
            c["id"], int(call["partition"]), call_id, now):
        raise Conflict(f"call {call_id} is already being placed", "dialling")
    # (After a dead node, the record still says dialling: it waits again, and the runner that
    # takes it checks for "waiting".)
    if call["dial"] == Dial.WAITING:
        await store.agents.set_dial_at(call_id, now)
    else:
        await store.agents.set_dial(call_id, Dial.WAITING, now)
    return await call_view(call_id, store, queues, who)


@router.post("/v1/calls/{call_id}/skip", response_model=schemas.DispositionResult, responses={409: {"model": schemas.Problem}})
async def skip(call_id: str, store: StoreDep, queues: QueuesDep, who: Anyone) -> dict[str, Any]:
    """Preview mode: the agent does not call this customer; the contact goes back to the queue
    with no attempt counted."""
    call = await store.agents.call(call_id)
    _own(who, call["agent"])
    c = await store.campaigns.get(call["campaign"])
    if c["mode"] != "preview":
        raise Conflict(f"campaign {c['id']} is in {c['mode']} mode: only a preview can be skipped", c["state"])
    if not await store.dialsets.withdraw(c["id"], int(call["partition"]), call_id):
        raise Conflict(f"call {call_id} is already being placed: it can no longer be skipped", "dialling")
    done = await execute(transitions.skip(c, call_id, call), store, await queues.of(c))
    return {"call_id": call_id, "result": done.result}


@router.get("/v1/agents/{agent}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {
                                 "type": "object", "required": ["event", "data"], "properties": {
                                     "event": {"const": "agent"},
                                     "data": {"type": "string", "description": "JSON: the agent's record, as GET /v1/agents/{agent}"}}}}},
                             "description": "Server-Sent Events `agent` with the agent's record each time it changes "
                             "(joined campaigns, open call, break); a comment every 15 s keeps the stream alive"}})
async def agent_events(agent: str, request: Request, store: StoreDep, who: Anyone) -> StreamingResponse:
    """The agent screen's live updates: the agent's record whenever it changes."""
    _own(who, agent)
    await store.agents.get(agent)
    stopping: asyncio.Event = request.app.state.stopping

    feed: events.AgentFeed = request.app.state.agent_feed

    async def stream() -> AsyncIterator[str]:
        changed = feed.watch(agent)
        last, idle = None, 0.0
        try:
            while not stopping.is_set() and not await request.is_disconnected():
                changed.clear()  # before the read: a change after it wakes the next wait
                now = json.dumps(await store.agents.get(agent), sort_keys=True)
                if now != last:
                    last, idle = now, 0.0
                    yield f"event: agent\ndata: {now}\n\n"
                # Until the feed says this agent changed; every second, a look at the client and
                # the server's stop; every 15 s, a comment that keeps proxies from closing it.
                while not changed.is_set() and not stopping.is_set() and not await request.is_disconnected():
                    try:
                        await asyncio.wait_for(changed.wait(), 1.0)
                    except TimeoutError:
                        idle += 1.0
                        if idle >= 15.0:
                            idle = 0.0
                            yield ": keep-alive\n\n"
        finally:
            feed.unwatch(agent, changed)

    body = request.app.state.streams.hold(who.id, stream())
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/v1/agents/{agent}/away", response_model=schemas.Agent)
async def away(agent: str, store: StoreDep, who: Anyone) -> dict[str, Any]:
    """The agent takes a break: no new call is put through to it (a call in progress goes on,
    and its wrap-up ends as usual with the disposition)."""
    _own(who, agent)
    await store.agents.get(agent)
    await store.agents.set_away(agent, True)
    return await store.agents.get(agent)


@router.post("/v1/agents/{agent}/ready", response_model=schemas.Agent)
async def ready(agent: str, store: StoreDep, who: Anyone) -> dict[str, Any]:
    """The agent is back from a break."""
    _own(who, agent)
    await store.agents.get(agent)
    await store.agents.set_away(agent, False)
    return await store.agents.get(agent)


@router.post("/v1/agents/{agent}/next", response_model=schemas.NextResponse,
             responses={409: {"model": schemas.Problem}})
async def next_customer(agent: str, body: schemas.NextRequest, store: StoreDep, queues: QueuesDep, who: Anyone) -> dict[str, Any]:
    """Manual and preview modes: hand the agent its next customer, with the customer's attributes.
    Only when the previous one is finished (its disposition set, or the dialer's outcome when
    nobody answered): otherwise 409. `customer` is null when nobody is due now. The call is
    placed when the agent says (`POST /v1/calls/{call_id}/dial`) or, in preview mode, by itself
    at `dial_at` (the campaign's `preview_s`)."""
    _own(who, agent)
    a = await store.agents.get(agent)
    if a["call"]:
        raise Conflict(f"agent {agent} has call {a['call']} open: set its disposition first", "on_call")
    joined = [cid for cid in a["campaigns"] if body.campaign is None or cid == body.campaign]
    if body.campaign is not None and not joined:
        raise Conflict(f"agent {agent} has not joined campaign {body.campaign}")
    running = []
    for cid in joined:
        c = await store.campaigns.get(cid)
        # Taking part is checked now, not only at join: an agent taken off the campaign's list
        # gets no more of its customers.
        if c["mode"] in HANDS_OUT and c["state"] == "running" and (not c["agents"] or agent in c["agents"]):
            running.append(c)
    if not running:
        raise Conflict(f"agent {agent} has joined no running manual or preview campaign")
    if len(running) > 1 and body.campaign is None:
        raise bad_field(("body", "campaign"), f"agent {agent} is in several such campaigns: name one of {[c['id'] for c in running]}")
    c = running[0]
    q = await queues.of(c)
    now = time.time()
    for partition in range(c["partitions"]):
        # Due callbacks of this agent first; those reserved for other agents wait for them.
        try:
            claims = await q.claim(1, partition=partition, lease_s=AGENT_LEASE_S, with_attrs=True, agents=[agent])
        except dialer_core.ListMissing as e:
            raise Conflict(str(e), "suppression_list_missing") from None
        if claims:
            break
    else:
        return {"customer": None}
    claim = claims[0]
    h = transitions.hand_out(c, agent, claim, now)
    if not await store.agents.open_call(agent, h.call_id, h.record, h.event):
        # Another request for the same agent won the race: give this contact back untouched.
        await q.complete([dialer_core.Completion(claim.number, claim.token, "released", release=True)])
        raise Conflict(f"agent {agent} has a call open: set its disposition first", "on_call")
    # The partition's dialer places it when due (preview) or when the agent says (`dial`).
    await store.dialsets.offer(c["id"], claim.partition, h.call_id, h.due)
    return {"customer": {"call_id": h.call_id, "campaign": c["id"], "number": claim.number, "attempts": claim.attempts,
                         "source": claim.source, "attrs": claim.attrs, "dial_at": _dial_at(h.record)}}


@router.post("/v1/calls/{call_id}/disposition", response_model=schemas.DispositionResult,
             responses={409: {"model": schemas.Problem}})
async def disposition(call_id: str, body: schemas.Disposition, store: StoreDep, queues: QueuesDep, who: Anyone) -> dict[str, Any]:
    """Finish a call: its outcome, the survey answers, and either a callback time (the customer
    comes back to the same agent) or do-not-call-back (for the campaign's period)."""
    call = await store.agents.call(call_id)
    _own(who, call["agent"])
    c = await store.campaigns.get(call["campaign"])
    now = time.time()
    callback_at = body.callback_at.timestamp() if body.callback_at else None
    if callback_at is not None and callback_at <= now:
        raise bad_field(("body", "callback_at"), "must be in the future")
    if body.callback_at is not None and c["end_at"] and body.callback_at > datetime.fromisoformat(c["end_at"]):
        raise bad_field(("body", "callback_at"), f"is after the campaign's end ({c['end_at']})")
    if call.get("dial") in (Dial.WAITING, Dial.DIALLING) and not await store.dialsets.withdraw(
            c["id"], int(call["partition"]), call_id):
        # Not waiting any more: the dialer is ringing the customer. Its outcome ends the call
        # when nobody answers; an answered customer is put through, then the disposition.
        raise Conflict(f"call {call_id} is ringing: set the disposition once it is answered, "
                       "or wait for its outcome", "dialling")
    plan = transitions.disposition(c, call_id, call, body.outcome, body.answers, callback_at=callback_at,
                                   do_not_call_back=body.do_not_call_back, now=now)
    done = await execute(plan, store, await queues.of(c))
    if done.result == "stale":
        raise Conflict(f"call {call_id}: the customer's lease ran out before the disposition; "
                       "the contact went back to the queue and nothing was recorded", "stale")
    return {"call_id": call_id, "result": done.result}


@router.delete("/v1/agents/{agent}", status_code=204)
async def delete_agent(agent: str, request: Request, store: StoreDep, who: Ops) -> Response:
    """Delete an agent (not on a call), taking it out of its campaigns and revoking its tokens: an
    agent created again with the same id starts with none."""
    a = await store.agents.get(agent)
    if a["call"]:
        raise Conflict(f"agent {agent} has call {a['call']} open", "on_call")
    for cid in a["campaigns"]:
        await store.agents.leave(cid, agent)
    await store.agents.delete(agent)
    for token_id in await store.tokens.revoke_agent(agent):
        request.app.state.tokens.forget(token_id)
    log.info("agent %s deleted by %s, its tokens revoked", agent, who.label)
    return Response(status_code=204)

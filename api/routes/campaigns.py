"""Campaigns: settings, lifecycle, contacts, live pacing, results."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import dialer_core
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from api import events, schemas
from api.auth import Principal
from api.compliance import loosened
from api.spreadsheet import safe
from api.deps import (
    Admin,
    Ops,
    QueuesDep,
    StoreDep,
    bad_field,
    unprocessable,
    upload_dir,
)
from store.campaigns import API_ACTIONS, TRANSITIONS
from store.errors import Conflict, NotAllowed
from store.queue import bulk
from pacer.cdr import Archive

log = logging.getLogger("dialer.api")
#: Approved, and not finished: the four-eyes rule guards changes (api/compliance.py).
APPROVED_STATES = ("approved", "running", "paused")
router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the file itself: CSV with a header row (one column holds the number, the others "
        "become attributes), or one number per line; gzip-compressed is accepted",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
CHUNK = 1 << 20


async def receive_file(request: Request, where: Path) -> Path:
    """Write the request body to a file in `where`, 1 MB at a time: a list of any size is never held
    in memory. Refused (507, the part received removed) if it would leave the disk with less than
    the limits' `disk_reserve` free: Redis's AOF and the CDR archive share that disk."""
    reserve: int = request.app.state.limits.disk_reserve
    path = where / f"upload-{secrets.token_hex(8)}"

    def create() -> BinaryIO:
        where.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")

    def check(coming: int) -> None:
        free = shutil.disk_usage(where).free
        if free - coming < reserve:
            raise HTTPException(507, f"not enough disk for this upload: {free:,} bytes free, and {reserve:,} are kept "
                                "for Redis and the CDR archive (`dialer serve --disk-reserve`)")

    length = request.headers.get("content-length")
    fh = await asyncio.to_thread(create)
    try:
        await asyncio.to_thread(check, int(length) if length else 0)
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) >= CHUNK:
                await asyncio.to_thread(check, len(buf))
                await asyncio.to_thread(fh.write, bytes(buf))
                buf.clear()
        if buf:
            await asyncio.to_thread(check, len(buf))
            await asyncio.to_thread(fh.write, bytes(buf))
    except BaseException:
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(path.unlink, True)
        raise
    await asyncio.to_thread(fh.close)
    return path


def _validated(data: dict[str, Any]) -> schemas.CampaignSpec:
    try:
        return schemas.CampaignSpec.model_validate(data)
    except ValidationError as e:
        raise unprocessable(e, "body") from None


@router.post("", status_code=201, response_model=schemas.Campaign)
async def create_campaign(body: schemas.CampaignCreate, store: StoreDep, who: Ops) -> dict[str, Any]:
    """Create a campaign; it waits in `pending_approval` until an admin (or another supervisor)
    approves it."""
    cid = body.id or f"c-{secrets.token_hex(5)}"
    spec = body.model_dump(mode="json", exclude={"id"})
    await _lists_exist(store, spec["suppression_lists"])
    campaign = await store.campaigns.create(cid, spec, who.label, who.holder)
    log.info("campaign %s created by %s (%s mode)", cid, who.label, body.mode)
    return campaign


@router.get("", response_model=schemas.CampaignList)
async def list_campaigns(store: StoreDep, who: Ops, state: schemas.State | None = None) -> dict[str, Any]:
    return {"campaigns": await store.campaigns.all(state)}


@router.get("/{cid}", response_model=schemas.Campaign)
async def get_campaign(cid: str, store: StoreDep, who: Ops) -> dict[str, Any]:
    return await store.campaigns.get(cid)


async def _lists_exist(store: StoreDep, lists: list[str]) -> None:
    """422 naming the suppression lists that do not exist: a campaign naming one dials nobody."""
    if lists:
        there = {x["name"] for x in await asyncio.to_thread(dialer_core.suppression_lists, store.url)}
        missing = [name for name in lists if name not in there]
        if missing:
            raise bad_field(("body", "suppression_lists"), f"no suppression list {', '.join(map(repr, missing))}: "
                            "upload it first (PUT /v1/suppression-lists/{name})")


async def _apply(store: StoreDep, queues: QueuesDep, cid: str, change: Any, event: str, who: Principal) -> dict[str, Any]:
    """Merge a change into the stored spec, validate the whole, check the four-eyes rule
    (api/compliance.py), store it if nothing moved meanwhile (a lifecycle move counts)."""
    for _ in range(5):
        current = await store.campaigns.get(cid)
        spec = {k: current[k] for k in schemas.CampaignSpec.model_fields}
        merged = change(spec)
        new = _validated(merged).model_dump(mode="json")
        changed = {k: v for k, v in new.items() if spec.get(k) != v}
        if "suppression_lists" in changed:
            await _lists_exist(store, new["suppression_lists"])
        if current["state"] in APPROVED_STATES and who.role != "admin":
            loose = loosened(_validated(spec).model_dump(mode="json"), new)
            if loose:
                raise NotAllowed(
                    f"campaign {cid} is {current['state']}: after approval only an admin may loosen "
                    f"{', '.join(loose)} (tightening is allowed: fewer hours or attempts, more lists or exclusions, "
                    "a lower abandon target)")
        try:
            await store.campaigns.update_spec(cid, current["revision"], new, event, {"changed": changed})
        except Conflict:
            continue  # someone else changed it between our read and write: merge again
        if "suppression_lists" in changed:
            q = await queues.of(await store.campaigns.get(cid))
            if (await q.stats())["exists"]:
                await q.set_suppression_lists(new["suppression_lists"])
        return await store.campaigns.get(cid)
    raise Conflict(f"campaign {cid} keeps changing; retry")


@router.patch("/{cid}", response_model=schemas.Campaign)
async def patch_campaign(cid: str, body: schemas.CampaignPatch, store: StoreDep, queues: QueuesDep, who: Ops) -> dict[str, Any]:
    """Change settings. The result is validated as a whole; a rejected change leaves the campaign as
    it was."""
    campaign = await _apply(store, queues, cid, body.merged, "updated", who)
    log.info("campaign %s changed by %s: %s", cid, who.label, sorted(body.model_fields_set))
    return campaign


@router.delete("/{cid}", status_code=204)
async def delete_campaign(cid: str, store: StoreDep, queues: QueuesDep, request: Request, who: Admin) -> Response:
    """Delete a campaign that is not running or paused, with its queue (removed in the background). Admin only."""
    c = await store.campaigns.get(cid)
    await store.campaigns.delete(cid)
    queues.forget(cid)
    request.app.state.purges.start(cid, c["partitions"])
    log.info("campaign %s deleted by %s", cid, who.label)
    return Response(status_code=204)


def _lifecycle(action: str) -> None:
    t = TRANSITIONS[action]

    async def act(cid: str, store: StoreDep, who: Ops) -> dict[str, Any]:
        not_creator = action == "approve" and who.role != "admin"
        await store.campaigns.transition(cid, action, who.label, not_creator=not_creator, holder=who.holder)
        campaign = await store.campaigns.get(cid)
        log.info("campaign %s: %s by %s -> %s", cid, action, who.label, campaign["state"])
        return campaign

    act.__name__ = f"{action}_campaign"
    summary = {
        "approve": "Approve a pending campaign (admin; a supervisor only for a campaign someone else created).",
        "start": "Start an approved campaign: it dials from its start time, inside its calling windows.",
        "pause": "Pause: no new calls; calls in progress finish.",
        "resume": "Resume a paused campaign.",
        "stop": "Stop for good: no new calls; calls in progress finish.",
    }[action]
    router.post(
        f"/{{cid}}/{action}", response_model=schemas.Campaign, description=f"{summary} Allowed from: {', '.join(t.allowed)}; "
        "otherwise 409 naming the current state.", responses={409: {"model": schemas.Problem}},
    )(act)


for _action in API_ACTIONS:
    _lifecycle(_action)


# -- contacts ---------------------------------------------------------------------------------


@router.post("/{cid}/contacts", response_model=schemas.ImportReport, openapi_extra=UPLOAD_BODY)
async def import_contacts(
    cid: str, request: Request, store: StoreDep, queues: QueuesDep, who: Ops,
    number_column: Annotated[str | None, Query(max_length=200, description="CSV column holding the number (default: phone, number, msisdn, ...)")] = None,
    format: Annotated[Literal["auto", "csv", "plain"], Query(description="file format")] = "auto",
) -> dict[str, Any]:
    """Stream a contacts file into the campaign's queue with the campaign's country, suppression
    lists and exclusion rules. Good rows are loaded, bad ones reported with line and reason; sending
    the same file again loads only what is missing. Progress goes to the event stream."""
    c = await store.campaigns.get(cid)
    if c["state"] in ("stopped", "completed"):
        raise Conflict(f"campaign {cid} is {c['state']}: it takes no more contacts", c["state"])
    path = await receive_file(request, upload_dir(request))
    loop = asyncio.get_running_loop()
    last = [0.0]

    def progress(report: dialer_core.ImportReport) -> None:  # called from the importer's thread
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            data = {k: v for k, v in report.items() if k != "rejections"}
            asyncio.run_coroutine_threadsafe(store.campaigns.publish(cid, "import_progress", data), loop)

    try:
        report = await bulk(
            dialer_core.import_contacts, store.url, path, cid, country=c["country"], partitions=c["partitions"],
            number_column=number_column, format=format, suppression_lists=c["suppression_lists"],
            exclusions=c["exclusions"], progress=progress,
        )
    except dialer_core.InvalidInput as e:  # no number column, not a CSV, a rule's column missing ...
        raise bad_field(("body",), str(e).replace(str(path), "the uploaded file")) from None
    finally:
        await asyncio.to_thread(path.unlink, True)
    await store.campaigns.publish(cid, "imported", {k: v for k, v in report.items() if k != "rejections"})
    log.info("campaign %s: %s imported %d of %d rows", cid, who.label, report["accepted"], report["read"])
    return dict(report)


@router.get("/{cid}/contacts", response_model=schemas.ContactPage)
async def list_contacts(
    cid: str, store: StoreDep, queues: QueuesDep, who: Ops,
    state: Annotated[Literal["ready", "claimed", "waiting_retry", "callback", "do_not_call_back", "done"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the campaign's contacts: state, attempts, last outcome, callback or
    do-not-call-back time, attributes, survey answers."""
    c = await store.campaigns.get(cid)
    q = await queues.of(c)
    try:
        page = await q.contacts(state=state, cursor=cursor, count=limit)
    except dialer_core.InvalidInput as e:
        raise bad_field(("query", "cursor"), str(e)) from None
    answers = await store.agents.answers(cid, [x["number"] for x in page["contacts"]])
    for contact, a in zip(page["contacts"], answers):
        contact["answers"] = a
    return dict(page)


@router.get("/{cid}/contacts/{number}/calls", response_model=list[schemas.CallRecord])
async def contact_calls(cid: str, number: Annotated[str, PathParam(max_length=32)], request: Request, store: StoreDep, who: Ops) -> list[dict[str, Any]]:
    """One contact's calls and SMS as the CDR archive has them, oldest first (the number in any
    form the campaign's country reads)."""
    c = await store.campaigns.get(cid)
    try:
        e164 = dialer_core.normalize(number, c["country"])
    except dialer_core.InvalidNumber as e:
        raise bad_field(("path", "number"), str(e)) from None
    archive: Archive = request.app.state.archive
    return await asyncio.to_thread(archive.calls, cid, e164)


# -- pacing -----------------------------------------------------------------------------------


def _pacing_view(c: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    return {"settings": c["pacing"], "mode": c["mode"], "revision": c["revision"], "live": live}


@router.get("/{cid}/pacing", response_model=schemas.PacingView)
async def get_pacing(cid: str, store: StoreDep, who: Ops) -> dict[str, Any]:
    """The pacing settings and, while a pacer runs the campaign, its engine's live estimates."""
    c = await store.campaigns.get(cid)
    return _pacing_view(c, await store.campaigns.live(cid))


@router.patch("/{cid}/pacing", response_model=schemas.PacingView)
async def patch_pacing(cid: str, body: schemas.PacingPatch, store: StoreDep, queues: QueuesDep, who: Ops) -> dict[str, Any]:
    """Change pacing while the campaign runs: the running pacer applies it within a second. All
    values are checked together first; a refused change changes nothing."""
    change = body.model_dump(exclude_unset=True)

    def merge(spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "pacing": {**spec["pacing"], **change}}

    c = await _apply(store, queues, cid, merge, "pacing", who)
    log.info("campaign %s: pacing changed by %s: %s", cid, who.label, change)
    return _pacing_view(c, await store.campaigns.live(cid))


# -- results ----------------------------------------------------------------------------------


@router.get("/{cid}/stats", response_model=schemas.Stats)
async def stats(cid: str, store: StoreDep, queues: QueuesDep, who: Ops) -> dict[str, Any]:
    """Queue depth, attempts and outcomes so far; with a pacer running, its live figures."""
    c = await store.campaigns.get(cid)
    q = await queues.of(c)
    s, present, live = await asyncio.gather(q.stats(), store.agents.present_count(cid), store.campaigns.live(cid))
    counters: dict[str, int] = s["counters"]
    completed = {k: v for k, v in counters.items() if k in schemas.COMPLETION_RESULTS}
    return {
        "campaign": cid, "state": c["state"],
        "queue": {k: s[k] for k in ("ready", "retry_due", "retry_waiting", "callbacks_due", "callbacks_waiting", "leased")},
        "attempted": sum(v for k, v in completed.items() if k in schemas.ATTEMPT_RESULTS),
        "completed": completed,
        "outcomes": {k.removeprefix("outcome:"): v for k, v in counters.items() if k.startswith("outcome:")},
        "agents_joined": present, "live": live,
    }


@router.get("/{cid}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {
                                 "type": "object", "required": ["event", "data"], "properties": {
                                     "id": {"type": "string"}, "event": {"type": "string"},
                                     "data": {"type": "string", "description": "JSON"}}}}},
                             "description": "Server-Sent Events: `id` (resume with Last-Event-ID), `event` (created, "
                             "state, updated, pacing, import_progress, imported, agent, call, disposition, error: a dialing node "
                             "cannot dial the campaign, e.g. it has no trunk of the campaign's name), `data` (JSON)"}})
async def campaign_events(
    cid: str, request: Request, store: StoreDep, who: Ops,
    last_event_id: Annotated[str | None, Header(description="resume after this event (sent by EventSource on reconnect)")] = None,
    since: Annotated[str | None, Query(pattern=r"^(\d+(-\d+)?)$", description="replay from this event id; 0 for all kept")] = None,
) -> StreamingResponse:
    """The campaign's events as they happen (Server-Sent Events), for live dashboards."""
    await store.campaigns.get(cid)
    if last_event_id is not None and not re.fullmatch(r"\d+-\d+", last_event_id):
        last_event_id = None  # not one of ours: start from now
    start = last_event_id or since or "$"
    body = request.app.state.streams.hold(who.id, events.stream(request, store, request.app.state.campaign_feed, cid, start))
    return StreamingResponse(
        body, media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


RESULT_COLUMNS = ["number", "state", "attempts", "last_outcome", "time", "agent", "answers", "calls", "last_sip_code",
                  "dtmf", "sms_status"]


@router.get("/{cid}/results.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def results_csv(cid: str, request: Request, store: StoreDep, queues: QueuesDep, who: Ops) -> StreamingResponse:
    """One row per contact, streamed: state, attempts, last outcome, time, agent, survey answers
    (JSON); from the CDR archive, calls recorded, the last call's SIP code and DTMF, the SMS
    status; then the contact's attributes."""
    c = await store.campaigns.get(cid)
    q = await queues.of(c)
    archive: Archive = request.app.state.archive

    async def rows() -> AsyncIterator[str]:
        cursor: str | None = None
        attr_columns: list[str] | None = None
        buf = io.StringIO()
        out = csv.writer(buf)
        while True:
            page = await q.contacts(cursor=cursor, count=1000)
            contacts = page["contacts"]
            numbers = [x["number"] for x in contacts]
            answers, archived = await asyncio.gather(store.agents.answers(cid, numbers), asyncio.to_thread(archive.latest, cid, numbers))
            for x, a in zip(contacts, answers):
                if attr_columns is None:
                    attr_columns = list(x["attrs"])
                    out.writerow(RESULT_COLUMNS + [safe(k) for k in attr_columns])
                cdr = archived.get(x["number"], {})
                out.writerow([x["number"], x["state"], x["attempts"], x["last_outcome"] or "",
                              "" if x["time"] is None else x["time"], x["agent"] or "", json.dumps(a) if a else "",
                              cdr.get("calls", 0), cdr.get("sip_code") or "", cdr.get("dtmf", ""), cdr.get("sms_status") or ""]
                             + [safe(x["attrs"].get(k, "")) for k in attr_columns])
            if attr_columns is None and page["next"] is None:
                out.writerow(RESULT_COLUMNS)
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            cursor = page["next"]
            if cursor is None:
                return

    return StreamingResponse(rows(), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{cid}-results.csv"'})


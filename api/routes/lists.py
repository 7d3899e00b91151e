"""Suppression lists: named lists of numbers (do-not-call, VIP, business lines ...) shared by
campaigns. A number on a list a campaign honours is never dialled, even if added after the
import: the claim checks it too. A campaign naming a list that does not exist dials nobody (the
claim fails closed), so a list cannot be deleted while an unfinished campaign names it, and a
campaign cannot be given one that does not exist."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

import dialer_core
from fastapi import APIRouter, Path, Query, Request, Response

from api import schemas
from api.deps import Admin, Ops, StoreDep, bad_field, upload_dir
from api.routes.campaigns import UPLOAD_BODY, receive_file
from store.campaigns import FINISHED
from store.errors import Conflict, Missing, NotAllowed
from store.queue import bulk

log = logging.getLogger("dialer.api")
router = APIRouter(prefix="/v1/suppression-lists", tags=["suppression lists"])
ListName = Annotated[str, Path(pattern=schemas.NAME_RE)]


@router.put("/{name}", response_model=schemas.ListReport, openapi_extra=UPLOAD_BODY)
async def put_list(
    name: ListName, request: Request, store: StoreDep, who: Ops,
    country: Annotated[str, Query(pattern=schemas.COUNTRY_RE, description="default country for national numbers (ISO 3166-1 alpha-2)")],
    mode: Annotated[Literal["replace", "append"], Query(description="replace the list (switched atomically at the end) or add to it")] = "replace",
    number_column: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["auto", "csv", "plain"], Query()] = "auto",
) -> dict[str, Any]:
    """Upload a list (CSV or one number per line, streamed, of any size). Replacing a list that
    exists can take numbers off it, so that is an admin's (as deleting is); a supervisor creates
    lists and appends to them."""
    if mode == "replace" and who.role != "admin" and name in await _names(store):
        raise NotAllowed(f"suppression list {name!r} exists: replacing it (which can take numbers off it) is an admin's; "
                         "append to it with mode=append")
    path = await receive_file(request, upload_dir(request))
    try:
        report = await bulk(
            dialer_core.load_suppression_list, store.url, name, path, country=country, mode=mode,
            number_column=number_column, format=format,
        )
    except dialer_core.InvalidInput as e:
        raise bad_field(("body",), str(e).replace(str(path), "the uploaded file")) from None
    finally:
        await asyncio.to_thread(path.unlink, True)
    log.info("suppression list %s: %s by %s, %d numbers now", name, mode, who.label, report["total"])
    return dict(report)


async def _names(store: StoreDep) -> set[str]:
    return {x["name"] for x in await asyncio.to_thread(dialer_core.suppression_lists, store.url)}


@router.get("", response_model=list[schemas.ListInfo])
async def lists(store: StoreDep, who: Ops) -> list[dict[str, Any]]:
    return [dict(x) for x in await asyncio.to_thread(dialer_core.suppression_lists, store.url)]


@router.get("/{name}", response_model=schemas.ListInfo)
async def get_list(name: ListName, store: StoreDep, who: Ops) -> dict[str, Any]:
    for x in await asyncio.to_thread(dialer_core.suppression_lists, store.url):
        if x["name"] == name:
            return dict(x)
    raise Missing(f"no suppression list {name!r}")


@router.delete("/{name}", status_code=204)
async def delete_list(name: ListName, store: StoreDep, who: Admin) -> Response:
    """Delete a list no unfinished campaign names (409 names the campaigns that do: take it off
    them first). A campaign that names a list that is gone dials nobody until it is back."""
    users = [c["id"] for c in await store.campaigns.all() if c["state"] not in FINISHED and name in c["suppression_lists"]]
    if users:
        raise Conflict(f"suppression list {name!r} is honoured by campaign(s) {', '.join(users)}: take it off them first",
                       "in_use")
    if not await asyncio.to_thread(dialer_core.delete_suppression_list, store.url, name):
        raise Missing(f"no suppression list {name!r}")
    log.info("suppression list %s deleted by %s", name, who.label)
    return Response(status_code=204)

"""API tokens over HTTP (admin only): the same records `dialer token` manages."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from api import schemas
from api.auth import new_token
from api.deps import Admin, StoreDep, bad_field
from store.errors import Missing

log = logging.getLogger("dialer.api")
router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


class TokenCreate(schemas.Strict):
    role: schemas.Role
    name: str = Field("", max_length=200, description="who holds it (required for a supervisor token: approvals compare holders)")
    expires_in_s: float = Field(30 * 86_400, ge=60, le=365 * 86_400, description="the token stops working after this many seconds")
    agent: schemas.Name | None = Field(None, description="the agent an agent token speaks for (required for role agent, only then)")


class TokenInfo(BaseModel):
    id: str
    role: schemas.Role
    name: str
    agent: str | None
    created_at: str
    expires_at: str | None = Field(None, description="when it stops working (absent: 30 days after created_at)")


class NewToken(TokenInfo):
    token: str = Field(description="the bearer token: shown only in this response")


@router.post("", status_code=201, response_model=NewToken)
async def create(body: TokenCreate, store: StoreDep, who: Admin) -> dict[str, Any]:
    if (body.role == "agent") != (body.agent is not None):
        raise bad_field(("body", "agent"), "an agent token names its agent, and only an agent token does")
    if body.role == "supervisor" and not body.name.strip():
        raise bad_field(("body", "name"), "a supervisor token names the person who holds it: approvals compare holders")
    token, digest, record = new_token(body.role, body.name, body.agent, timedelta(seconds=body.expires_in_s))
    await store.tokens.add(digest, record)
    log.info("%s token %s created by %s", body.role, record["id"], who.label)
    return {"token": token, **record}


@router.get("", response_model=list[TokenInfo])
async def list_tokens(store: StoreDep, who: Admin) -> list[dict[str, Any]]:
    return await store.tokens.all()


@router.delete("/{token_id}", status_code=204)
async def revoke(token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")], request: Request, store: StoreDep, who: Admin) -> Response:
    """Revoke a token: at once in this process; within a second in other `dialer serve` processes
    (they remember a token they checked for one second)."""
    if await store.tokens.revoke(token_id):
        request.app.state.tokens.forget(token_id)
        log.info("token %s revoked by %s", token_id, who.label)
        return Response(status_code=204)
    raise Missing(f"no token {token_id!r}")

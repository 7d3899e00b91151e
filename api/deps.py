"""What every route needs: the store, the caller's identity and role, the campaign's queue, and the
one shape of a 422."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, cast

import dialer_core
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from api.auth import TOKENS, Principal, digest, principal_of
from api.store import Store

_bearer = HTTPBearer(auto_error=False, description="a token from `dialer token create --role admin|supervisor|agent`")


class Queues:
    """One `CallQueue` per campaign, rebuilt when the campaign's revision (its retry policy) moves."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._cache: dict[str, tuple[tuple[int, str], dialer_core.CallQueue]] = {}

    async def of(self, campaign: dict[str, Any]) -> dialer_core.CallQueue:
        version = (campaign["revision"], campaign["created_at"])  # a re-created campaign starts at 1 again
        hit = self._cache.get(campaign["id"])
        if hit is not None and hit[0] == version:
            return hit[1]
        q = await asyncio.to_thread(
            dialer_core.CallQueue, self.redis_url, campaign["id"], partitions=campaign["partitions"],
            max_attempts=campaign["max_attempts"], retry_delay_s=campaign["retry_delay_s"], retry_on=campaign["retry_on"],
        )
        self._cache[campaign["id"]] = (version, q)
        return q

    def forget(self, cid: str) -> None:
        self._cache.pop(cid, None)


def store(request: Request) -> Store:
    s: Store = request.app.state.store
    return s


def queues(request: Request) -> Queues:
    q: Queues = request.app.state.queues
    return q


def upload_dir(request: Request) -> Path:
    p: Path = request.app.state.upload_dir
    return p


StoreDep = Annotated[Store, Depends(store)]
QueuesDep = Annotated[Queues, Depends(queues)]


async def principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if creds is None:
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer <token>)", headers={"WWW-Authenticate": "Bearer"})
    record = await store(request).redis.hget(TOKENS, digest(creds.credentials))
    p = principal_of(cast(str | None, record))
    if p is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = p
    return p


def role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through `admin` and the given roles, and answers 403 to others."""
    allowed = {"admin", *roles}

    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role not in allowed:
            raise HTTPException(403, f"role {p.role} may not do this (needs {' or '.join(sorted(allowed))})")
        return p

    return check


Ops = Annotated[Principal, Depends(role("supervisor"))]
Admin = Annotated[Principal, Depends(role())]
Anyone = Annotated[Principal, Depends(role("supervisor", "agent"))]


def unprocessable(error: ValidationError, *prefix: str | int) -> RequestValidationError:
    """A pydantic error raised on a merged or derived value, as the 422 FastAPI gives a bad body."""
    return RequestValidationError([
        {"loc": (*prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors(include_url=False)
    ])


def bad_field(loc: tuple[str | int, ...], msg: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])

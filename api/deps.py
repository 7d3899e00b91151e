"""What every route needs: the store, the caller's identity and role, the campaign's queue, and the
one shape of a 422."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from api.auth import Principal, digest, principal_of
from store import Store
from store.queue import Queues

_bearer = HTTPBearer(auto_error=False, description="a token from `dialer token create --role admin|supervisor|agent`")


async def store(request: Request) -> Store:
    s: Store = request.app.state.store
    return s


async def queues(request: Request) -> Queues:
    q: Queues = request.app.state.queues
    return q


def upload_dir(request: Request) -> Path:
    p: Path = request.app.state.upload_dir
    return p


StoreDep = Annotated[Store, Depends(store)]
QueuesDep = Annotated[Queues, Depends(queues)]


class TokenCache:
    """Tokens looked up in the last second: a revocation takes effect within `TTL_S`, and a busy
    agent's requests skip one Redis round trip each."""

    TTL_S = 1.0
    MAX = 10_000

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, Principal | None]] = {}

    async def lookup(self, s: Store, token: str) -> Principal | None:
        now = time.monotonic()
        hit = self._seen.get(token)
        if hit is not None and now - hit[0] < self.TTL_S:
            return hit[1]
        p = principal_of(await s.tokens.record(digest(token)))
        if len(self._seen) >= self.MAX:
            self._seen.clear()
        self._seen[token] = (now, p)
        return p

    def forget(self, token_id: str) -> None:
        """A token revoked through this process stops working at once."""
        for token, (_, p) in list(self._seen.items()):
            if p is not None and p.id == token_id:
                del self._seen[token]


async def principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known  # checked by the gate (api/limits.py) before the body was read
    if creds is None:
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer <token>)", headers={"WWW-Authenticate": "Bearer"})
    cache: TokenCache = request.app.state.tokens
    p = await cache.lookup(request.app.state.store, creds.credentials)
    if p is None:
        raise HTTPException(401, "unknown, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
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

"""What the API accepts before any route runs: who is asking, and how much they send.

`Gate` is a plain ASGI middleware in front of the routes. For every route that needs a token it
checks the bearer token first, so a request with no token or a bad one is answered 401 without a
byte of its body read (a 300 MB body to `/v1/tokens` used to be read and parsed whole, then
refused). It then bounds the body: a `Content-Length` over the route's limit is answered 413 at
once, and a body sent without one (chunked) is counted as it streams and cut off with 413 at the
limit. Uploads (contacts, suppression lists) have their own, larger limit, and `receive_file`
(api/routes/uploads.py) stops one that would leave the disk with less than `disk_reserve` free:
the disk is shared with Redis's AOF and the CDR archive, which must never be the ones to fail.
Event streams are counted per token (`Streams`): more than `streams_per_token` at once is 429.
"""

from __future__ import annotations

import json
import re
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.errors import Unreachable

if TYPE_CHECKING:
    from api.auth import Principal

#: Paths served without a token: the screens (they ask for one), liveness, the API's own docs.
PUBLIC = frozenset({"/healthz", "/agent", "/supervisor", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: Routes whose body is a file: (method, path pattern).
UPLOADS = (("POST", re.compile(r"^/v1/campaigns/[^/]+/contacts$")), ("PUT", re.compile(r"^/v1/suppression-lists/[^/]+$")))

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """`512k`, `1M`, `2G`, `1048576` (bytes; k/M/G/T are powers of 1024)."""
    m = re.fullmatch(r"\s*([0-9]+)\s*([kmgt]?)i?b?\s*", text.lower())
    if m is None:
        raise ValueError(f"{text!r}: expected a size such as 1048576, 512k, 1M or 2G")
    return int(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class Limits:
    #: JSON bodies (every route but the uploads). The biggest legitimate one, a campaign with
    #: 10,000 agents and a 50-question survey, is under 600 kB.
    max_body: int = 1 << 20
    #: One uploaded file as sent (gzip counts compressed). 12 million numbers with a few
    #: attributes are about 1 GB of CSV.
    max_upload: int = 4 << 30
    #: An upload is refused (507) when it would leave less than this free on the state disk.
    disk_reserve: int = 1 << 30
    #: Event streams (SSE) one token may hold open at once.
    streams_per_token: int = 8


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> tuple[Message, Message]:
    raw = [(b"content-type", b"application/json")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    body = json.dumps({"detail": detail}).encode()
    raw.append((b"content-length", str(len(body)).encode()))
    return ({"type": "http.response.start", "status": status, "headers": raw},
            {"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return None


def bearer(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth is None:
        return None
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class Gate:
    """Authentication and body limits before routing (see the module's docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path not in PUBLIC:
            refusal = await self._authenticate(scope)
            if refusal is not None:
                for m in refusal:
                    await send(m)
                return
        upload = any(scope["method"] == m and p.match(path) for m, p in UPLOADS)
        limit = self.limits.max_upload if upload else self.limits.max_body
        what = "an upload" if upload else "a request body"
        length = _header(scope, b"content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()) or len(length) > 19:
                for m in _problem(400, f"Content-Length {length[:40]!r} is not a number"):
                    await send(m)
                return
            if int(length) > limit:
                for m in _problem(413, f"{what} may be at most {limit:,} bytes; this one is {int(length):,}"):
                    await send(m)
                return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"{what} may be at most {limit:,} bytes")
            return message

        await self.app(scope, bounded, send)

    async def _authenticate(self, scope: Scope) -> tuple[Message, Message] | None:
        """None if the request carries a valid token (its principal noted in the request's
        state for the routes), else the 401 to answer."""
        token = bearer(scope)
        challenge = {"WWW-Authenticate": "Bearer"}
        if token is None:
            return _problem(401, "a bearer token is required (Authorization: Bearer <token>)", challenge)
        state = scope["app"].state
        try:
            principal: Principal | None = await state.tokens.lookup(state.store, token)
        except Unreachable:
            return _problem(503, "the dialer's Redis is unavailable; retry shortly", {"Retry-After": "1"})
        if principal is None:
            return _problem(401, "unknown, expired or revoked token", challenge)
        scope.setdefault("state", {})["principal"] = principal
        return None


class Streams:
    """Event streams open per token: `hold` refuses (429) past the limit, before the response
    starts, and gives the slot back when the stream ends, however it ends."""

    def __init__(self, per_token: int) -> None:
        self.per_token = per_token
        self.open_by: Counter[str] = Counter()

    def hold(self, token_id: str, body: AsyncIterator[str]) -> AsyncIterator[str]:
        if self.open_by[token_id] >= self.per_token:
            raise HTTPException(429, f"this token already holds {self.per_token} event streams open; close one "
                                "(or use another token)", headers={"Retry-After": "5"})
        self.open_by[token_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open_by[token_id] -= 1
                if self.open_by[token_id] <= 0:
                    del self.open_by[token_id]

        async def held() -> AsyncIterator[str]:
            try:
                async for chunk in body:
                    yield chunk
            finally:
                release()

        gen = held()
        # A response cancelled before its first chunk never runs the generator's `finally`.
        weakref.finalize(gen, release)
        return gen

    @property
    def open(self) -> int:
        return sum(self.open_by.values())

"""The control API: `create_app(redis_url, state_dir)` builds it; the api role of `dialer serve`
(api/node.py) serves it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import dialer_core
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from api import schemas
from api.deps import Ops, TokenCache
from api.events import AgentFeed, CampaignFeed
from api.limits import Gate, Limits, Streams
from api.metrics import Metrics, TimingMiddleware, campaign_lines
from api.routes import agents, campaigns, lists, tokens
from pacer.cdr import Archive
from store import Store
from store.errors import Conflict, Missing, NotAllowed, Slow, Unavailable
from store.queue import Queues

log = logging.getLogger("dialer.api")

#: The screens (HTML with their script inline: nothing to build).
WEB = Path(__file__).parent / "web"
#: The screens are never shown inside another site's frame (clickjacking: a page that frames the
#: supervisor screen could make a signed-in supervisor click "start" unawares).
NOT_FRAMED = {"X-Frame-Options": "DENY"}


def page_headers(html: str) -> dict[str, str]:
    """A screen's security headers. Its Content-Security-Policy lets run only the page's own
    inline script (by its SHA-256: an injected `<script>` or `onerror=` runs nothing), talk only
    to this origin, load nothing from elsewhere, and never be framed. Inline styles stay allowed
    (`style` attributes): CSS cannot run code, and the page shows no untrusted markup."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)
    csp = (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {**NOT_FRAMED, "Content-Security-Policy": csp, "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Problem, "description": "the body cannot be read (not UTF-8 where text is expected)"},
    401: {"model": schemas.Problem, "description": "no token, or an unknown or revoked one"},
    403: {"model": schemas.Problem, "description": "the token's role may not do this"},
    404: {"model": schemas.Problem, "description": "no such campaign, agent, list or call"},
    409: {"model": schemas.Problem, "description": "not possible in the current state (named in `state`)"},
    413: {"model": schemas.Problem, "description": "the body is over the limit (`dialer serve --max-body`, `--max-upload`)"},
    429: {"model": schemas.Problem, "description": "too many at once (event streams per token: `--streams-per-token`)"},
}


class Purges:
    """Deleting a campaign's queue keys (hundreds of thousands for a big list) in the background."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, cid: str, partitions: int) -> None:
        task = asyncio.get_running_loop().create_task(self._purge(cid, partitions))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _purge(self, cid: str, partitions: int) -> None:
        removed = await self.store.campaigns.purge_queue(cid, partitions)
        log.info("campaign %s: %d queue keys removed", cid, removed)

    async def wait(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def create_app(redis_url: str, state_dir: Path, *, cdr_path: Path | None = None, limits: Limits | None = None) -> FastAPI:
    """The API on `redis_url`; uploads land in `state_dir`; results and call histories are read
    from the CDR archive `cdr_path` (default `state_dir/cdr.sqlite3`); what a request may send is
    bounded by `limits` (api/limits.py). Dialling, recording and SMS are other roles of `dialer
    serve` (api/service.py), never part of the HTTP server."""
    metrics = Metrics()
    limits = limits or Limits()
    cdr_file = cdr_path or state_dir / "cdr.sqlite3"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(redis_url)
        app.state.store = store
        app.state.queues = Queues(redis_url)
        app.state.tokens = TokenCache()
        app.state.upload_dir = state_dir / "uploads"
        app.state.limits = limits
        app.state.streams = Streams(limits.streams_per_token)
        app.state.purges = Purges(store)
        app.state.metrics = metrics
        app.state.archive = Archive(cdr_file)
        app.state.agent_feed = agents_feed = AgentFeed(redis_url)
        app.state.campaign_feed = campaigns_feed = CampaignFeed(redis_url)
        tasks = [asyncio.create_task(t.run(app.state.stopping)) for t in (agents_feed, campaigns_feed)]
        tasks.append(asyncio.create_task(metrics.watch_loop(app.state.stopping)))
        try:
            yield
        finally:
            app.state.stopping.set()
            for t in tasks:
                await t
            await app.state.purges.wait()
            await store.close()

    app = FastAPI(
        title="Predictive dialer: control API",
        version=dialer_core.__version__,
        description="Campaigns, contacts, suppression lists, agents, live pacing and results. "
        "Every route but /healthz needs `Authorization: Bearer <token>`, checked before the body is read; "
        "bodies over the limit are refused with 413.",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.state.stopping = asyncio.Event()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        if e.status_code == 405:
            # Starlette names only the first route that matched the path; list every method it has.
            allowed = sorted({m for r in app.router.routes if isinstance(r, APIRoute)
                              and r.matches(request.scope)[0] != Match.NONE for m in r.methods or ()})
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)})
        return await http_exception_handler(request, e)

    @app.exception_handler(Missing)
    async def missing(request: Request, e: Missing) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, e: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(e), "state": e.state}, status_code=409)

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, e: NotAllowed) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=403)

    @app.exception_handler(dialer_core.RedisUnavailable)
    @app.exception_handler(Unavailable)  # the same outage met by the asyncio client
    @app.exception_handler(Slow)  # ... or Redis not answering within the command timeout
    async def redis_down(request: Request, e: Exception) -> JSONResponse:
        log.error("redis unavailable: %s", e)
        return JSONResponse({"detail": "the dialer's Redis is unavailable; retry shortly"}, status_code=503,
                            headers={"Retry-After": "1"})

    pages = {name: (WEB / f"{name}.html").read_text(encoding="utf-8") for name in ("supervisor", "agent")}
    headers = {name: page_headers(html) for name, html in pages.items()}

    @app.get("/agent", include_in_schema=False)
    async def agent_page() -> HTMLResponse:
        """The agent screen (one page, no build step): sign in with an agent token, join
        campaigns, take customers, fill the survey, set the disposition, callback or
        do-not-call-back; live updates over Server-Sent Events."""
        return HTMLResponse(pages["agent"], headers=headers["agent"])

    @app.get("/supervisor", include_in_schema=False)
    async def supervisor_page() -> HTMLResponse:
        """The supervisor dashboard (one page, no build step): campaigns with their lifecycle
        buttons, live figures and a chart, pacing editable live. It asks for a token."""
        return HTMLResponse(pages["supervisor"], headers=headers["supervisor"])

    @app.get("/healthz", tags=["system"], responses={503: {"model": schemas.Problem}})
    async def healthz(request: Request) -> JSONResponse:
        """Liveness and Redis reachability (no token needed)."""
        store: Store = request.app.state.store
        try:
            await store.ping()
        except (OSError, Unavailable, Slow) as e:
            return JSONResponse({"status": "unavailable", "redis": str(e)}, status_code=503)
        return JSONResponse({"status": "ok", "redis": "ok"})

    @app.get("/metrics", tags=["system"], response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}})
    async def prometheus(request: Request, who: Ops) -> PlainTextResponse:
        """Prometheus text format (an admin or supervisor token: the figures name campaigns and
        their volumes): API latency, calls by outcome, queue depth, campaigns by state, and the
        pacer's figures while one runs."""
        store: Store = request.app.state.store
        queues: Queues = request.app.state.queues
        all_campaigns = await store.campaigns.all()

        async def stats(c: dict[str, Any]) -> dict[str, Any]:
            return await (await queues.of(c)).stats()

        text = metrics.text() + await campaign_lines(all_campaigns, stats, store.campaigns.live)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    app.include_router(campaigns.router)
    app.include_router(lists.router)
    app.include_router(agents.router)
    app.include_router(tokens.router)
    app.add_middleware(Gate, limits=limits)
    app.add_middleware(TimingMiddleware, metrics=metrics)
    return app

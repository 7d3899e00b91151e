"""`dialer serve`: the composition root. One asyncio process (uvloop) runs the roles it is given:

    api     the HTTP control API (FastAPI on uvicorn, httptools)
    dial    the runtime: partitions of running campaigns, SIP, media (pacer/runtime.py)
    record  the CDR recorder: the Redis stream into the SQLite archive (pacer/cdr.py)
    sms     the SMPP sender of the campaigns' SMS (pacer/sms.py)

By default all of them (dial only with a trunk, sms only with an SMSC); `--roles` picks a
subset, so a host can serve the API while others dial: each role runs on its own, and the dial
role never lives inside the HTTP server - an overloaded or dead API process takes no call down.

Redis is the given one or the embedded redis-server of the state directory, started before the
roles and stopped after them. SIGTERM and SIGINT stop it in phases: the API takes no new
connections and finishes the requests in flight (live event streams end within a second) while
the dial role places no new call and waits for the calls in progress to end; then the recorder
and the SMS sender stop. A second SIGTERM or SIGINT hangs the calls up (their outcomes recorded).
A role other than the API that ends by itself (a failure its own retries did not cover) is
logged with its traceback and started again, never left dead.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Collection, Coroutine, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import uvicorn
import uvloop

from api.app import create_app
from api.limits import Limits
from api.schemas import masked
from api.settings import Settings
from pacer.cdr import Recorder
from pacer.gateway import GatewaySettings
from pacer.runtime import Dialer
from pacer.sms import SmscConfig, SmsSender
from pacer.windows import preload_zones
from sip_gateway.ivr.script import preload_shipped

log = logging.getLogger("dialer.serve")

ROLES: Final = ("api", "dial", "record", "sms")
#: A role that keeps ending is started again after at most this long.
RESTART_MAX_S: Final = 30.0


class MaskNumbers(logging.Filter):
    """Phone numbers never reach a log line whole: +84901234567 -> +8490*****67."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = masked(message), None
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskNumbers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def parse_roles(text: str | None, *, trunk: bool, smsc: bool, recorder: bool) -> frozenset[str]:
    """`--roles api,dial,...` (None: every role this node is configured for). A role named
    explicitly that lacks its settings is refused (ValueError)."""
    if text is None:
        return frozenset(r for r in ROLES if (r != "dial" or trunk) and (r != "sms" or smsc) and (r != "record" or recorder))
    roles = {r.strip() for r in text.split(",") if r.strip()}
    unknown = roles - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"--roles {text!r}: give one or more of {', '.join(ROLES)}, comma-separated")
    if "dial" in roles and not trunk:
        raise ValueError("--roles dial needs --trunk (the trunk it dials through)")
    if "sms" in roles and not smsc:
        raise ValueError("--roles sms needs --smsc (the SMSC it sends through)")
    if "record" in roles and not recorder:
        raise ValueError("--roles record and --no-recorder contradict each other")
    return frozenset(roles)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the node's handlers stop every role."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Node:
    """The roles of one `dialer serve` process, started together and stopped in phases."""

    def __init__(self, settings: Settings, redis_url: str, roles: Collection[str], *, host: str = "127.0.0.1",
                 port: int = 8080, access_log: bool = False, cdr_path: Path | None = None, smsc: SmscConfig | None = None,
                 gateway: GatewaySettings | None = None, limits: Limits | None = None) -> None:
        self.settings, self.redis_url, self.roles = settings, redis_url, frozenset(roles)
        self.host, self.port, self.access_log = host, port, access_log
        self.cdr_path = cdr_path or settings.state_dir / "cdr.sqlite3"
        self.smsc, self.gateway = smsc, gateway
        self.stopping = asyncio.Event()
        self.signals = 0
        self.server: _Server | None = None
        self.dialer: Dialer | None = None
        # Before the loop runs: the screens' pages, the time zones and the shipped IVR scripts
        # are read from disk.
        self.app = create_app(redis_url, settings.state_dir, cdr_path=self.cdr_path, limits=limits) if "api" in self.roles else None
        preload_zones()
        preload_shipped()

    def _signal(self, sig: int) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info("stopping (signal %d): no new calls; calls in progress end by themselves", sig)
            self.stopping.set()
            return
        # Asked again: hang up the calls in progress (their outcomes are recorded).
        if self.dialer is not None:
            self.dialer.hurry()
        if sig == signal.SIGINT and self.server is not None:
            self.server.force_exit = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signal, sig)
        calls_stop, rest_stop = asyncio.Event(), asyncio.Event()
        first: dict[str, asyncio.Task[object]] = {}  # stopped first: the API and the calls
        last: dict[str, asyncio.Task[object]] = {}   # then: the recorder and the SMS sender
        #: How to start each role again if it ends by itself (not the API: see `_until_stopped`).
        starts: dict[str, Callable[[], Coroutine[Any, Any, object]]] = {}
        app_stopping: asyncio.Event | None = None
        if "dial" in self.roles:
            gateway = self.gateway
            assert gateway is not None

            async def dial() -> None:
                self.dialer = Dialer(self.redis_url, gateway)  # a new incarnation each time
                await self.dialer.run(calls_stop)

            starts["dial"] = dial
        if "record" in self.roles:
            starts["record"] = lambda: Recorder(self.redis_url, self.cdr_path).run(rest_stop)
        if "sms" in self.roles:
            smsc = self.smsc
            assert smsc is not None
            starts["sms"] = lambda: SmsSender(self.redis_url, smsc).run(rest_stop)
        for name, start in starts.items():
            (first if name == "dial" else last)[name] = asyncio.create_task(start())
        if self.app is not None:
            app_stopping = self.app.state.stopping
            config = uvicorn.Config(self.app, host=self.host, port=self.port, loop="none", http="httptools", lifespan="on",
                                    log_config=None, access_log=self.access_log, timeout_graceful_shutdown=10,
                                    proxy_headers=False)
            self.server = _Server(config)
            first["api"] = asyncio.create_task(self.server.serve())
        shown = re.sub(r"//[^@/]*@", "//***@", self.redis_url)
        where = f"http://{self.host}:{self.port} (OpenAPI at /docs), " if "api" in self.roles else ""
        log.info("dialer serve: roles %s; %sredis %s, state %s", ",".join(r for r in ROLES if r in self.roles), where,
                 shown, self.settings.state_dir)
        failed = await self._until_stopped(first, last, starts)
        # Phase 1: no new requests, no new calls; the calls in progress end.
        calls_stop.set()
        if app_stopping is not None:
            app_stopping.set()  # live event streams end at once
        if self.server is not None:
            self.server.should_exit = True
        failed |= await _wait(first)
        # Phase 2: what the calls wrote is recorded and sent as far as it goes now.
        rest_stop.set()
        failed |= await _wait(last)
        if self.server is not None and not self.server.started:
            failed = True
        return 1 if failed else 0

    async def _until_stopped(self, first: dict[str, asyncio.Task[object]], last: dict[str, asyncio.Task[object]],
                             starts: dict[str, Callable[[], Coroutine[Any, Any, object]]]) -> bool:
        """Until a stop signal. A role that ends by itself (a bug, or a failure its own retries
        did not cover) is logged with its traceback and started again - after 1 s, doubling up
        to `RESTART_MAX_S` while it keeps ending within a minute - never left dead. The API
        ending by itself (its port taken, say) stops every role: True."""
        stop = asyncio.create_task(self.stopping.wait())
        delays: dict[str, float] = {}
        started = {name: time.monotonic() for name in starts}
        while True:
            roles = {t: (group, name) for group in (first, last) for name, t in group.items()}
            done, _ = await asyncio.wait([stop, *roles], return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                return False
            for task in done:
                group, name = roles[task]
                if name not in starts:
                    stop.cancel()
                    log.error("role %s ended by itself: stopping the others", name)
                    return True
                e = None if task.cancelled() else task.exception()
                ran = time.monotonic() - started[name]
                delay = 1.0 if ran >= 60 else min(delays.get(name, 0.5) * 2, RESTART_MAX_S)
                delays[name] = delay
                log.error("role %s ended by itself after %.1f s (%s): started again in %.0f s", name, ran,
                          "no error" if e is None else repr(e), delay, exc_info=e)
                group[name] = asyncio.create_task(self._restart(starts[name], delay))
                started[name] = time.monotonic() + delay

    async def _restart(self, start: Callable[[], Coroutine[Any, Any, object]], delay: float) -> object:
        try:
            await asyncio.wait_for(self.stopping.wait(), delay)
            return None  # stopping meanwhile: not started again
        except TimeoutError:
            return await start()


async def _wait(tasks: dict[str, asyncio.Task[object]]) -> bool:
    """Wait for the roles' tasks; True if one of them failed."""
    failed = False
    for name, task in tasks.items():
        try:
            await task
        except Exception as e:  # a role's crash must not keep the others from stopping
            log.error("role %s failed: %r", name, e)
            failed = True
    return failed


def serve(settings: Settings, redis_url: str, host: str, port: int, *, roles: Collection[str] = ROLES,
          log_level: str = "info", access_log: bool = False, cdr_path: Path | None = None,
          smsc: SmscConfig | None = None, gateway: GatewaySettings | None = None, limits: Limits | None = None) -> int:
    configure_logging(log_level)
    node = Node(settings, redis_url, roles, host=host, port=port, access_log=access_log, cdr_path=cdr_path, smsc=smsc,
                gateway=gateway, limits=limits)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(node.run())

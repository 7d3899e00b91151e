"""`dialer serve`: the API on uvicorn (uvloop, httptools) in one asyncio process.

Redis is the given one or the embedded redis-server of the state directory, started before the
server and stopped after it. SIGTERM and SIGINT stop it cleanly: no new connections, requests in
flight finish (live event streams end within a second), no new call is placed and the calls in
progress end by themselves (a second SIGTERM or SIGINT hangs them up, their outcomes recorded),
then Redis is left or stopped.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from api.app import create_app
from api.schemas import masked
from api.settings import Settings
from pacer.runtime import GatewaySettings
from pacer.sms import SmscConfig

log = logging.getLogger("dialer.api")


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


class _Server(uvicorn.Server):
    on_exit: Callable[[], None] | None = None
    #: A second stop signal: hang up the calls in progress (the first lets them end).
    on_hurry: Callable[[], None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Tell live event streams at once: uvicorn waits for open responses before the lifespan ends.
        if self.on_exit is not None:
            self.on_exit()
        if self.should_exit and self.on_hurry is not None:
            self.on_hurry()
        # Unlike uvicorn's own, this does not raise the signal again once the server has stopped:
        # a SIGTERM would then kill the process before the embedded Redis is stopped. A stop
        # asked for is a clean exit (status 0); a second Ctrl-C forces it.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def serve(settings: Settings, redis_url: str, host: str, port: int, *, log_level: str = "info", access_log: bool = False,
          cdr_path: Path | None = None, recorder: bool = True, smsc: SmscConfig | None = None,
          gateway: GatewaySettings | None = None) -> int:
    configure_logging(log_level)
    app = create_app(redis_url, settings.state_dir, cdr_path=cdr_path, recorder=recorder, smsc=smsc, gateway=gateway)
    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on", log_config=None,
        access_log=access_log, timeout_graceful_shutdown=10, proxy_headers=False,
    )
    server = _Server(config)
    server.on_exit = app.state.stopping.set
    server.on_hurry = lambda: app.state.hurry()
    shown = re.sub(r"//[^@/]*@", "//***@", redis_url)
    log.info("dialer serve: http://%s:%d (OpenAPI at /docs), redis %s, state %s", host, port, shown, settings.state_dir)
    server.run()
    return 0 if server.started else 1

"""`Outage`: a Redis outage said once when it starts and once when it ends, not at every retry
(a runner retries every 100 ms: a 2 s restart of redis-server used to log 20 warnings per task)."""

from __future__ import annotations

import logging
import time


class Outage:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        #: When the current outage began (monotonic), None while Redis answers.
        self.since: float | None = None
        self.failures = 0

    def failed(self, e: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s: Redis: %s (retrying; said again when it answers)", self.what, e)
        else:
            self.log.debug("%s: Redis still failing: %s", self.what, e)

    def ok(self) -> None:
        if self.since is not None:
            self.log.warning("%s: Redis answers again, after %.1f s and %d failed attempts", self.what,
                             time.monotonic() - self.since, self.failures)
            self.since = None
            self.failures = 0

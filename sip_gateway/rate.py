"""Rate control for one trunk, sans-I/O: a calls-per-second token bucket, a concurrent channel
cap, and a pause after a 503 with Retry-After. `admit(now)` says whether a new call may start now
and, if not, when to ask again."""

from __future__ import annotations

from dataclasses import dataclass

from sip_gateway.message import ascii_int

#: A 503 without Retry-After pauses new calls this long; a Retry-After is honoured up to the cap.
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 300.0


@dataclass
class RateLimit:
    cps: float | None = None
    channels: int | None = None
    active: int = 0
    tokens: float = 0.0
    refilled_at: float | None = None
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        if self.cps is not None and not self.cps > 0:
            raise ValueError(f"cps={self.cps}: expected a positive rate")
        if self.channels is not None and self.channels < 1:
            raise ValueError(f"channels={self.channels}: expected at least 1")
        self.tokens = self.burst

    @property
    def burst(self) -> float:
        return max(1.0, self.cps) if self.cps is not None else 0.0

    def _refill(self, now: float) -> None:
        if self.cps is None:
            return
        if self.refilled_at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.refilled_at) * self.cps)
        self.refilled_at = now

    def admit(self, now: float) -> float | None:
        """None: start the call now (counted as active). Else: the time to ask again."""
        if now < self.paused_until:
            return self.paused_until
        if self.channels is not None and self.active >= self.channels:
            return now + 0.05  # a channel frees when a call ends: poll briefly
        self._refill(now)
        if self.cps is not None:
            if self.tokens < 1.0 - 1e-9:  # (a hair's tolerance: the refill is floating point)
                return now + (1.0 - self.tokens) / self.cps
            self.tokens = max(0.0, self.tokens - 1.0)
        self.active += 1
        return None

    def release(self) -> None:
        """A call admitted by `admit` has ended."""
        self.active = max(0, self.active - 1)

    def overloaded(self, now: float, retry_after: str | None) -> None:
        """The trunk answered 503: pause new calls for its Retry-After (or a second)."""
        delay = DEFAULT_BACKOFF_S
        if retry_after:
            seconds = ascii_int(retry_after.split(";", 1)[0].split("(", 1)[0].strip(), 9)
            if seconds is not None:
                delay = min(float(seconds), MAX_BACKOFF_S)
        self.paused_until = max(self.paused_until, now + delay)

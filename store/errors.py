"""The store's exceptions. Callers catch these, never the Redis client's own classes.

`Missing`, `Conflict` and `NotAllowed` say why a state change was refused (the API answers 404,
409 and 403 with them). `Unavailable` is Redis being unreachable (a `ConnectionError`, as the
core's `dialer_core.RedisUnavailable` is), `Slow` a command that timed out, `Unreachable` either;
`StoreError` any failure of a Redis command.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import RedisError as _RedisError
from redis.exceptions import ResponseError as _ResponseError
from redis.exceptions import TimeoutError as _RedisTimeoutError

#: Any failure of a Redis command (the client's base class).
StoreError = _RedisError
#: Redis is unreachable or the connection broke (a `ConnectionError`).
Unavailable = _RedisConnectionError
#: A command took longer than the connection's timeout.
Slow = _RedisTimeoutError
#: Redis did not answer: the connection broke, or a command timed out (a network cut, a stalled
#: server). What a task that waits Redis out catches.
Unreachable: tuple[type[_RedisError], ...] = (Unavailable, Slow)
#: Redis answered with an error (a missing consumer group, a script error, OOM ...).
Refused = _ResponseError


class Missing(LookupError):
    """No such campaign / agent / call / token."""


class Conflict(RuntimeError):
    """The thing is in a state where this cannot happen; `state` names it."""

    def __init__(self, message: str, state: str | None = None) -> None:
        super().__init__(message)
        self.state = state


class NotAllowed(PermissionError):
    """The caller's role allows the action in general, but not on this object."""

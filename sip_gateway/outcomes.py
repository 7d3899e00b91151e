"""What happened to a call, from its SIP final response (or its absence)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    ANSWERED = "answered"
    #: A 200 OK crossed our CANCEL: ACKed, then hung up with BYE.
    ANSWERED_THEN_DROPPED = "answered_then_dropped"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    TRUNK_FAILURE = "trunk_failure"
    #: Any other final response.
    FAILED = "failed"


def outcome_of(status: int, cancelled: bool = False) -> Outcome:
    """The outcome of a final response to our INVITE (`cancelled`: after our CANCEL)."""
    if 200 <= status < 300:
        return Outcome.ANSWERED_THEN_DROPPED if cancelled else Outcome.ANSWERED
    if status in (486, 600):
        return Outcome.BUSY
    if status in (408, 480, 487):
        return Outcome.NO_ANSWER
    if status in (401, 403, 407, 603):  # 401/407: a challenge we could not (or did not) answer
        return Outcome.REJECTED
    if status in (404, 484):
        return Outcome.INVALID_NUMBER
    if 500 <= status < 600:
        return Outcome.TRUNK_FAILURE
    return Outcome.FAILED


@dataclass
class CallResult:
    """A call's outcome, its SIP code (None: no final response) and its times (monotonic s)."""

    call_id: str
    number: str
    outcome: Outcome | None = None
    code: int | None = None
    reason: str = ""
    dialed_at: float = 0.0
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None

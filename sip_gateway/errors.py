"""The gateway's exceptions: each also subclasses the builtin it means."""

from __future__ import annotations


class SipError(Exception):
    """Base class of every error raised by sip_gateway."""


class SipParseError(SipError, ValueError):
    """A datagram or stream is not a SIP message we accept (it is dropped and counted)."""


class SipTimeout(SipError, TimeoutError):
    """A transaction got no final response in time (Timer B or F)."""


class SipTransportError(SipError, OSError):
    """The transport could not send (ICMP unreachable, socket closed ...)."""


class NotPlaced(Exception):
    """The call was not placed: its owner's `admit` check refused it once the trunk's rate limit
    let it go (a calling window closed while it waited, for instance)."""

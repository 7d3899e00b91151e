"""The media engine (`dialer_core.MediaEngine`, one Rust thread for every call's RTP) on the
event loop: its events are read when its notification fd becomes readable and handed to the
listener of each call."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import ClassVar, Protocol

import dialer_core

log = logging.getLogger(__name__)


class MediaListener(Protocol):
    def media_event(self, kind: str, detail: str) -> None:
        """("played", prompt), ("digit", key) or ("inactive", "")."""


class MediaHub:
    #: The hubs of this process until their shutdown (`/metrics` reads their engines' totals).
    running: ClassVar[weakref.WeakSet[MediaHub]] = weakref.WeakSet()

    def __init__(self, engine: dialer_core.MediaEngine) -> None:
        self.engine = engine
        self.listeners: dict[int, MediaListener] = {}
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(engine.fileno(), self._drain)
        MediaHub.running.add(self)

    def open(self, listener: MediaListener) -> tuple[int, int]:
        """A call's media: (engine call id, local RTP port)."""
        call, port = self.engine.open()
        self.listeners[call] = listener
        return call, port

    def close(self, call: int) -> None:
        self.listeners.pop(call, None)
        self.engine.close(call)

    def _drain(self) -> None:
        for kind, call, detail in self.engine.events():
            listener = self.listeners.get(call)
            if listener is None:
                continue  # the call ended while its event was on the way
            try:
                listener.media_event(kind, detail)
            except Exception:  # one call's bug must not stop every other call's events
                log.exception("media event %s for call %d", kind, call)

    def shutdown(self) -> None:
        MediaHub.running.discard(self)
        self.loop.remove_reader(self.engine.fileno())
        self.engine.shutdown()

"""A TCP proxy on loopback that can cut the network between its clients and a server: while cut
it forwards nothing either way and leaves new connections unanswered (in its backlog), as a
partition does - no reset, no FIN, the client's reads just wait. Healed, it forwards what was
held, and a connection whose client gave up meanwhile is closed towards the server too."""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType

Addr = tuple[str, int]


class CuttableProxy:
    def __init__(self, server: Addr) -> None:
        self.server = server
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.setblocking(False)
        self.address: Addr = self.listener.getsockname()[:2]
        self.cut_now = threading.Event()
        self.stopping = threading.Event()
        self.peers: dict[socket.socket, socket.socket] = {}
        self.thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)

    def __enter__(self) -> CuttableProxy:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stopping.set()
        self.thread.join(5)
        for s in list(self.peers):
            s.close()
        self.listener.close()

    def cut(self) -> None:
        self.cut_now.set()

    def heal(self) -> None:
        self.cut_now.clear()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        while not self.stopping.is_set():
            if self.cut_now.is_set():
                self.stopping.wait(0.01)
                continue
            for key, _ in sel.select(0.05):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if s is self.listener:
                    self._accept(sel)
                else:
                    self._pump(sel, s)
        sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.server, timeout=5)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(True)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(s, selectors.EVENT_READ)
        self.peers[client], self.peers[upstream] = upstream, client

    def _pump(self, sel: selectors.BaseSelector, s: socket.socket) -> None:
        other = self.peers.get(s)
        try:
            data = s.recv(65536)
            if data and other is not None:
                other.sendall(data)
                return
        except OSError:
            pass
        for x in (s, other):
            if x is not None:
                self.peers.pop(x, None)
                try:
                    sel.unregister(x)
                except (KeyError, ValueError):
                    pass
                x.close()

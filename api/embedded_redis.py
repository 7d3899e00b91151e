"""The embedded Redis: a `redis-server` child the dialer starts when no Redis URL is given.

It listens on a unix socket in the state directory (or on a loopback TCP port, for tests), keeps
its data there with AOF on (`appendfsync everysec`), and is reused by the next start: data
survives restarts. If a server is already answering on the socket (another `dialer` process
started it), that one is used and left running.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from api.settings import Settings

# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 107


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started or did not answer."""


def ping(address: str | tuple[str, int], timeout: float = 1.0) -> str | None:
    """Send PING; return the first reply line (`+PONG`, `-LOADING ...`) or None if nobody answers."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(address)
            s.sendall(b"PING\r\n")
            reply = s.recv(256)
    except OSError:
        return None
    return reply.split(b"\r\n", 1)[0].decode("ascii", "replace") or None


class EmbeddedRedis:
    """Start, reuse and stop the state directory's redis-server."""

    def __init__(self, state_dir: Path, *, redis_server: str = "redis-server", port: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.data_dir = self.state_dir / "redis"
        self.redis_server = redis_server
        self.port = port
        self.socket_path = self.data_dir / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str | tuple[str, int]:
        return ("127.0.0.1", self.port) if self.port is not None else str(self.socket_path)

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}"
        return f"unix://{self.socket_path}"

    @property
    def owned(self) -> bool:
        """True when this object started the server (and so stops it)."""
        return self._proc is not None

    def _config(self) -> str:
        listen = (
            f"port {self.port}\nbind 127.0.0.1\n"
            if self.port is not None
            else f"port 0\nunixsocket {self.socket_path}\nunixsocketperm 700\n"
        )
        return (
            listen
            + f"dir {self.data_dir}\n"
            "appendonly yes\n"
            "appendfsync everysec\n"
            'save ""\n'
            "daemonize no\n"
            "protected-mode yes\n"
            "logfile redis.log\n"
            "databases 1\n"
        )

    def start(self, timeout: float = 30.0) -> str:
        """Start (or reuse) the server and wait until it answers PING; return its URL.

        Two `dialer` processes starting at once on one state directory take turns (a lock file):
        the second finds the first one's server and reuses it, so one AOF never has two writers.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None and len(str(self.socket_path)) > _MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"state directory path too long for a unix socket ({self.socket_path}); "
                "use a shorter --state-dir or give --redis-url"
            )
        with open(self.data_dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._start_locked(timeout)

    def _start_locked(self, timeout: float) -> str:
        reply = ping(self.address)
        if reply is not None:
            self._wait_ready(timeout)
            return self.url  # already running: reuse it, do not own it
        if self.port is None and self.socket_path.exists():
            self.socket_path.unlink()  # stale socket of a server that died
        conf = self.data_dir / "redis.conf"
        conf.write_text(self._config())
        try:
            self._proc = subprocess.Popen(
                [self.redis_server, str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches the dialer, which then stops Redis in order
            )
        except FileNotFoundError as e:
            raise EmbeddedRedisError(
                f"{self.redis_server} not found: install Debian's redis-server (`make setup` does) "
                "or give --redis-url"
            ) from e
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                self._proc = None
                raise EmbeddedRedisError(
                    "redis-server exited at start: " + (err.strip() or "\n".join(tail) or "no message")
                )
            reply = ping(self.address)
            if reply == "+PONG":
                return
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError(f"redis-server at {self.url} did not answer within {timeout:.0f} s (last reply: {reply})")
            time.sleep(delay)  # polling a child we just started; nothing else to wait on
            delay = min(delay * 2, 0.1)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server if this object started it (SIGTERM: Redis flushes its AOF, then exits)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[str]:
    """The Redis URL to use: the given one, or the embedded server's for the time of the block."""
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.state_dir, redis_server=settings.redis_server)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()

"""`dialer serve` as a real child process on a free loopback port, for tests and benchmarks, under
the blocking-call detector (tests/support/guarded.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.redis_server import free_port


class ApiServer:
    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@contextmanager
def api_server(redis_url: str, state_dir: Path, *, extra: list[str] | None = None, timeout: float = 30.0,
               ready_log: str | None = None) -> Iterator[ApiServer]:
    """`dialer serve` on a free port, ready once /healthz answers 200 - or, for a node without
    the api role, once its log shows `ready_log`."""
    port = free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.guarded", "--redis-url", redis_url, "--state-dir", str(state_dir), "serve",
             "--port", str(port), *(extra or [])],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    server = ApiServer(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dialer serve exited with {proc.returncode}:\n{server.log_text()}")
            if ready_log is not None:
                if ready_log in server.log_text():
                    break
            else:
                try:
                    if httpx.get(server.base_url + "/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dialer serve did not answer within {timeout} s:\n{server.log_text()}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()

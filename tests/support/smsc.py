"""The SMSC simulator (`loadtest/smsc.py`) as a child process on a free loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.redis_server import free_port


class Smsc:
    def __init__(self, proc: subprocess.Popen[str], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def messages(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@contextmanager
def smsc(workdir: Path, *, refuse_first: int = 0, receipts: bool = True, port: int | None = None) -> Iterator[Smsc]:
    """An SMSC simulator on `port` (a free one by default), stopped on leaving."""
    port = port or free_port()
    log = workdir / f"smsc-{port}.jsonl"
    cmd = [sys.executable, "-m", "loadtest.smsc", "--port", str(port), "--log", str(log), "--refuse-first", str(refuse_first)]
    if not receipts:
        cmd.append("--no-receipts")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"SMSC simulator did not start: {line}{proc.stdout.read() if proc.poll() is not None else ''}")
        yield Smsc(proc, port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

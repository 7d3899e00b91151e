"""Progress on stderr for long commands: one updating line on a terminal, a line every 5 s
otherwise (a log file or a CI job gets a readable record, not a wall of carriage returns)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any


class ProgressLine:
    """Shows the lines it is given, at most every `every_s` off a terminal (the last always)."""

    def __init__(self, enabled: bool = True, every_s: float = 5.0) -> None:
        self.enabled = enabled
        self.every_s = every_s
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_line = 0.0

    def due(self, final: bool = False) -> bool:
        """Whether a line shown now would be shown (call `show` then)."""
        if not self.enabled:
            return False
        return self.tty or final or time.perf_counter() - self.last_line >= self.every_s

    def show(self, line: str) -> None:
        self.last_line = time.perf_counter()
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def done(self) -> None:
        if self.enabled and self.tty and self.last_line:
            print(file=sys.stderr)


class ReadProgress(ProgressLine):
    """`import: 1,200,000 lines read (410,000/s)`, fed the importer's reports."""

    def __init__(self, what: str, enabled: bool = True) -> None:
        super().__init__(enabled)
        self.what = what

    def __call__(self, report: Mapping[str, Any]) -> None:
        if self.due():
            read = int(report.get("read", 0))
            self.show(f"{self.what}: {read:,} lines read ({read / max(self.elapsed(), 1e-9):,.0f}/s)")


class GridProgress(ProgressLine):
    """`simulating: [#####.....] 120/500 days, 35 s left`."""

    def __call__(self, done: int, total: int) -> None:
        if self.due(final=done >= total):
            left = self.elapsed() / done * (total - done)
            filled = 30 * done // total
            self.show(f"simulating: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} days, {left:.0f} s left")

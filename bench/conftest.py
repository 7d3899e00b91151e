"""Benchmarks: full size under `make bench` (timing on), small and quick inside `make test`."""

from __future__ import annotations

import os
import re
import subprocess

# numpy's OpenBLAS starts a spinning thread per core; on a 2-core machine they steal the CPU the
# timings measure. The benchmarks use no BLAS routine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture
def full_size(request: pytest.FixtureRequest) -> bool:
    """True when benchmarks are enabled (`make bench`): then the issue's sizes are used."""
    cfg = request.config
    return bool(cfg.getoption("benchmark_enable")) or not cfg.getoption("benchmark_disable")


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    for k, v in rows:
        print(f"   {k:<46} {v}")


def redis_benchmark(port: int, test: str, requests: int) -> float:
    """Requests/s of `redis-benchmark -t <test> -P 100` against the server on `port`."""
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-P", "100", "-n", str(requests), "-q"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    m = re.search(rf"{test.upper()}: ([\d.]+) requests per second", out.replace("\r", "\n"))
    assert m, out
    return float(m.group(1))

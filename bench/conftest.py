"""Benchmarks: full size under `make bench` (timing on), small and quick inside `make test`."""

from __future__ import annotations

import os

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

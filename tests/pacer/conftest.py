"""Async code under test must never block its event loop: blockbuster raises on any blocking
call (socket, file, sleep) made from the loop's thread while the loop runs. No exemptions yet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    with blockbuster_ctx() as bb:
        yield bb

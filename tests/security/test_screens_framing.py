"""The screens cannot be framed by another site (clickjacking): before, /supervisor could be
put in an invisible frame and a signed-in supervisor's clicks turned into "start" or "approve"."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("page", ["/supervisor", "/agent"])
def test_the_screens_refuse_to_be_framed(admin: httpx.Client, page: str) -> None:
    r = httpx.get(str(admin.base_url) + page)
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert r.headers["x-frame-options"] == "DENY"

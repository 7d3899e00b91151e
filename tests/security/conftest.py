"""The security tests attack the real `dialer serve` of tests/api (the same fixtures)."""

from tests.api.conftest import admin, client, server  # noqa: F401 (fixtures)

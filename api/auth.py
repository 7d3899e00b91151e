"""Bearer tokens with roles.

A token is `dlr_` + 32 random bytes (URL-safe base64), shown once when created. Redis keeps
only its SHA-256 (a token carries 256 bits of entropy, so an unsalted fast hash is enough: there
is nothing to guess) with the role, a label, and for an agent token the agent it speaks for:
    dialer:tokens   hash   sha256 hex -> {"id", "role", "name", "agent", "created_at"} (JSON)
`id` (the hash's first 12 hex digits) names a token in listings and revocation without
revealing it.

Roles: `admin` does everything and approves; `supervisor` runs and tunes campaigns, and may
approve only campaigns someone else created; `agent` sees and acts on its own calls only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Final, cast

import redis

from api.store import now_iso

TOKENS: Final = "dialer:tokens"
ROLES: Final = ("admin", "supervisor", "agent")
PREFIX: Final = "dlr_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, role and (agent tokens) agent id."""

    id: str
    role: str
    name: str
    agent: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.name or self.id}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(role: str, name: str = "", agent: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """A new token, its digest (the key it is stored under) and its record; nothing stored yet."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "agent") != (agent is not None):
        raise ValueError("an agent token names its agent (--agent), and only an agent token does")
    token = PREFIX + secrets.token_urlsafe(32)
    h = digest(token)
    return token, h, {"id": h[:12], "role": role, "name": name, "agent": agent, "created_at": now_iso()}


def create_token(redis_url: str, role: str, name: str = "", agent: str | None = None) -> tuple[str, dict[str, Any]]:
    """Create a token; return it (shown once) and its stored record."""
    token, h, record = new_token(role, name, agent)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.hset(TOKENS, h, json.dumps(record))
    finally:
        client.close()
    return token, record


def list_tokens(redis_url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        rows = client.hgetall(TOKENS)
    finally:
        client.close()
    return sorted((json.loads(v) for v in rows.values()), key=lambda r: str(r["created_at"]))


def revoke_token(redis_url: str, token_id: str) -> bool:
    """Delete the token whose id (or whole hash) starts with `token_id`; False if none does."""
    if len(token_id) < 8:
        raise ValueError("give at least 8 characters of the token's id")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        matches = [h for h in cast(list[str], client.hkeys(TOKENS)) if h.startswith(token_id)]
        if len(matches) > 1:
            raise ValueError(f"{token_id!r} matches {len(matches)} tokens: give more of the id")
        return bool(matches) and bool(client.hdel(TOKENS, matches[0]))
    finally:
        client.close()


def principal_of(record: str | None) -> Principal | None:
    if record is None:
        return None
    r = json.loads(record)
    return Principal(id=r["id"], role=r["role"], name=r.get("name") or "", agent=r.get("agent"))

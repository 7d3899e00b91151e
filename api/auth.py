"""Bearer tokens with roles.

A token is `dlr_` + 32 random bytes (URL-safe base64), shown once when created. The store keeps
only its SHA-256 (a token carries 256 bits of entropy, so an unsalted fast hash is enough: there
is nothing to guess) with the role, a label, and for an agent token the agent it speaks for
(`store/tokens.py`).
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
from typing import Any, Final

from store import tokens
from store.campaigns import now_iso

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
    tokens.add_sync(redis_url, h, record)
    return token, record


def list_tokens(redis_url: str) -> list[dict[str, Any]]:
    return tokens.all_sync(redis_url)


def revoke_token(redis_url: str, token_id: str) -> bool:
    """Delete the token whose id (or whole hash) starts with `token_id`; False if none does."""
    if len(token_id) < 8:
        raise ValueError("give at least 8 characters of the token's id")
    return tokens.revoke_sync(redis_url, token_id)


def principal_of(record: str | None) -> Principal | None:
    if record is None:
        return None
    r = json.loads(record)
    return Principal(id=r["id"], role=r["role"], name=r.get("name") or "", agent=r.get("agent"))

"""Bearer tokens with roles.

A token is `dlr_` + 32 random bytes (URL-safe base64), shown once when created. The store keeps
only its SHA-256 (a token carries 256 bits of entropy, so an unsalted fast hash is enough: there
is nothing to guess) with the role, a label, and for an agent token the agent it speaks for
(`store/tokens.py`).
`id` (the hash's first 12 hex digits) names a token in listings and revocation without
revealing it.

Roles: `admin` does everything and approves; `supervisor` runs and tunes campaigns, and may
approve only campaigns someone else created; `agent` sees and acts on its own calls only.

A token expires (`expires_at`; 30 days unless asked otherwise, 365 at most; one stored before
expiry existed lapses 30 days after it was created). A supervisor token names the person who
holds it (`name`): "someone else approves" compares holders (case and spacing ignored), so one
person with two tokens still cannot approve their own campaign. Deleting an agent revokes its
tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from store import tokens
from store.campaigns import now_iso

ROLES: Final = ("admin", "supervisor", "agent")
PREFIX: Final = "dlr_"
DEFAULT_TTL: Final = timedelta(days=30)
MAX_TTL: Final = timedelta(days=365)
MIN_TTL: Final = timedelta(minutes=1)
_TTL_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_ttl(text: str) -> timedelta:
    """`90s`, `15m`, `8h`, `30d` (a bare number is seconds), between a minute and 365 days."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*", text.lower())
    if m is None:
        raise ValueError(f"{text!r}: expected a duration such as 8h or 30d")
    ttl = timedelta(seconds=float(m.group(1)) * _TTL_UNITS[m.group(2) or "s"])
    check_ttl(ttl)
    return ttl


def check_ttl(ttl: timedelta) -> None:
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValueError("a token lives between 1 minute and 365 days")


def holder_of(name: str) -> str:
    """The person a name stands for, as approvals compare them (case and spacing ignored)."""
    return " ".join(name.split()).casefold()


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

    @property
    def holder(self) -> str:
        """Who holds the token (for "someone else approves"): its holder's name; a token stored
        before names were required stands for itself."""
        return holder_of(self.name) if self.name.strip() else f"token {self.id}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(role: str, name: str = "", agent: str | None = None,
              ttl: timedelta = DEFAULT_TTL) -> tuple[str, str, dict[str, Any]]:
    """A new token, its digest (the key it is stored under) and its record; nothing stored yet."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "agent") != (agent is not None):
        raise ValueError("an agent token names its agent (--agent), and only an agent token does")
    if role == "supervisor" and not name.strip():
        raise ValueError("a supervisor token names the person who holds it (--name): approvals compare holders")
    check_ttl(ttl)
    token = PREFIX + secrets.token_urlsafe(32)
    h = digest(token)
    now = datetime.now(UTC)
    return token, h, {"id": h[:12], "role": role, "name": name.strip(), "agent": agent, "created_at": now_iso(),
                      "expires_at": (now + ttl).isoformat(timespec="seconds")}


def create_token(redis_url: str, role: str, name: str = "", agent: str | None = None,
                 ttl: timedelta = DEFAULT_TTL) -> tuple[str, dict[str, Any]]:
    """Create a token; return it (shown once) and its stored record."""
    token, h, record = new_token(role, name, agent, ttl)
    tokens.add_sync(redis_url, h, record)
    return token, record


def expires_at(record: dict[str, Any]) -> datetime:
    """When a stored token lapses (a record from before expiry: 30 days after its creation)."""
    at = record.get("expires_at")
    if at:
        return datetime.fromisoformat(str(at))
    return datetime.fromisoformat(str(record["created_at"])) + DEFAULT_TTL


def list_tokens(redis_url: str) -> list[dict[str, Any]]:
    return tokens.all_sync(redis_url)


def revoke_token(redis_url: str, token_id: str) -> bool:
    """Delete the token whose id (or whole hash) starts with `token_id`; False if none does."""
    if len(token_id) < 8:
        raise ValueError("give at least 8 characters of the token's id")
    return tokens.revoke_sync(redis_url, token_id)


def principal_of(record: str | None, now: datetime | None = None) -> Principal | None:
    """Who a stored token speaks for; None if there is none, or it has expired."""
    if record is None:
        return None
    r = json.loads(record)
    if expires_at(r) <= (now or datetime.now(UTC)):
        return None
    return Principal(id=r["id"], role=r["role"], name=r.get("name") or "", agent=r.get("agent"))

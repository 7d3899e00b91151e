"""HTTP Digest authentication for SIP (RFC 3261 22, RFC 7616: MD5 and SHA-256, qop=auth)."""

from __future__ import annotations

import hashlib
import os
import re

_PARAM = re.compile(r'(\w+)\s*=\s*("([^"]*)"|[^,\s]+)')
ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "MD5-SESS": hashlib.md5, "SHA-256-SESS": hashlib.sha256}


def parse_challenge(value: str) -> dict[str, str]:
    """The parameters of a `Digest ...` challenge (keys lower-cased)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"not a Digest challenge: {value[:60]!r}")
    return {m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2) for m in _PARAM.finditer(rest)}


def authorization(challenge: str, method: str, uri: str, username: str, password: str, cnonce: str | None = None) -> str:
    """The `Authorization` (or `Proxy-Authorization`) value answering `challenge`."""
    c = parse_challenge(challenge)
    algorithm = c.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"digest algorithm {algorithm} is not supported (MD5, SHA-256)")

    def h(text: str) -> str:
        return ALGORITHMS[algorithm](text.encode()).hexdigest()

    realm, nonce = c.get("realm", ""), c.get("nonce", "")
    cnonce = cnonce or os.urandom(8).hex()
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        nc = "00000001"
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', f"algorithm={algorithm}", f'cnonce="{cnonce}"', f"nc={nc}", "qop=auth"]
    else:
        parts += [f'response="{h(f"{ha1}:{nonce}:{ha2}")}"', f"algorithm={algorithm}"]
    if "opaque" in c:
        parts.append(f'opaque="{c["opaque"]}"')
    return "Digest " + ", ".join(parts)

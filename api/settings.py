"""One settings object, built once at start-up from the command line and the environment.

No module below this one reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dialer"


@dataclass(frozen=True)
class Settings:
    """Where the dialer keeps its state and which Redis it talks to.

    `redis_url` None means: start (or reuse) the embedded redis-server in `state_dir`.
    """

    state_dir: Path
    redis_url: str | None
    redis_server: str = "redis-server"
    smsc_password: str = ""
    trunk_username: str | None = None
    trunk_password: str | None = None
    #: The named trunks' credentials as given: `DIALER_TRUNK_<NAME>_USERNAME` / `_PASSWORD`.
    trunk_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, state_dir: str | None = None, redis_url: str | None = None) -> Settings:
        sd = state_dir or os.environ.get("DIALER_STATE_DIR")
        url = redis_url or os.environ.get("DIALER_REDIS_URL") or None
        return cls(
            state_dir=Path(sd).expanduser() if sd else default_state_dir(),
            redis_url=url,
            redis_server=os.environ.get("DIALER_REDIS_SERVER", "redis-server"),
            smsc_password=os.environ.get("DIALER_SMSC_PASSWORD", ""),
            trunk_username=os.environ.get("DIALER_TRUNK_USERNAME") or None,
            trunk_password=os.environ.get("DIALER_TRUNK_PASSWORD") or None,
            trunk_env={k: v for k, v in os.environ.items() if k.startswith("DIALER_TRUNK_")},
        )

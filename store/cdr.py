"""The CDR stream: every call's and SMS's record, appended by whoever finishes it, read by the
recorders into their SQLite archives (`pacer/cdr.py`).

`CallRecord` is the record's shape. Appending is one XADD. The recorder's side: a consumer group
per archive file (`archive:<id>`), a lease per file (`keys.cdr_lease`: one recorder writes into
a file at a time), the registry of archives (`keys.CDR_ARCHIVES`) and trimming behind what every
archive active in the last hour acknowledged.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Final, Literal, cast

from store import keys
from store.connection import Client
from store.errors import Refused
from store.scripts import Scripts

#: A recorder's lease on its archive lasts this long unless renewed.
LEASE_MS: Final = 10_000
#: Archives seen within this long hold the stream's trimming back.
ACTIVE_S: Final = 3600.0

Kind = Literal["call", "sms"]
Entries = list[tuple[str, dict[str, str]]]


@dataclass
class CallRecord:
    """One call attempt (kind "call") or one SMS sent after a call (kind "sms")."""

    campaign: str
    number: str
    outcome: str
    kind: Kind = "call"
    attempt: int = 0
    call_id: str | None = None
    dialled_at: float | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    sip_code: int | None = None
    dtmf: str = ""
    agent: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    sms_status: str | None = None
    detail: str = ""

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, "", {})}, separators=(",", ":"))


def group_of(archive_id: str) -> str:
    return f"archive:{archive_id}"


class CdrStream:
    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self._scripts = Scripts(redis)

    async def append(self, *records: CallRecord) -> list[str]:
        """Append records to the CDR stream; answers their ids."""
        if len(records) == 1:
            return [str(await self.redis.xadd(keys.CDR_STREAM, {"r": records[0].to_json()}))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for r in records:
                pipe.xadd(keys.CDR_STREAM, {"r": r.to_json()})
            return [str(x) for x in await pipe.execute()]

    # -- the recorder's side --------------------------------------------------------------------------

    async def ensure_group(self, archive_id: str) -> None:
        try:
            await self.redis.xgroup_create(keys.CDR_STREAM, group_of(archive_id), id="0", mkstream=True)
        except Refused as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def hold(self, archive_id: str, consumer: str, path: str) -> bool:
        """Take or keep the archive's lease; while held, the archive is registered as active."""
        if not await self._scripts.run("lease_take", [keys.cdr_lease(archive_id)], [consumer, LEASE_MS]):
            return False
        await self.redis.hset(keys.CDR_ARCHIVES, archive_id, json.dumps(
            {"host": socket.gethostname(), "path": path, "seen": time.time()}))
        return True

    async def let_go(self, archive_id: str, consumer: str) -> None:
        await self._scripts.run("lease_release", [keys.cdr_lease(archive_id)], [consumer])

    async def read(self, archive_id: str, consumer: str, count: int, block_ms: int) -> Entries:
        got = cast(list[tuple[str, Entries]], await self.redis.xreadgroup(
            group_of(archive_id), consumer, {keys.CDR_STREAM: ">"}, count=count, block=block_ms))
        return [e for _, es in got for e in es]

    async def ack(self, archive_id: str, entry_ids: list[str]) -> None:
        await self.redis.xack(keys.CDR_STREAM, group_of(archive_id), *entry_ids)

    async def claim_pending(self, archive_id: str, consumer: str, start: str, count: int) -> tuple[str, Entries]:
        """Entries read by a recorder that died before acknowledging them: (next start, entries)."""
        reply = await self.redis.xautoclaim(keys.CDR_STREAM, group_of(archive_id), consumer, min_idle_time=0,
                                            start_id=start, count=count)
        return str(reply[0]), [e for e in reply[1] if e[1] is not None]

    async def trim(self) -> None:
        """Drop what every archive active in the last hour has acknowledged."""
        seen = cast(dict[str, str], await self.redis.hgetall(keys.CDR_ARCHIVES))
        active = {group_of(a) for a, v in seen.items() if time.time() - float(json.loads(v)["seen"]) < ACTIVE_S}
        floors = []
        for g in await self.redis.xinfo_groups(keys.CDR_STREAM):
            if g["name"] not in active:
                continue
            pending = await self.redis.xpending(keys.CDR_STREAM, g["name"])
            floors.append(pending["min"] if pending["pending"] else g["last-delivered-id"])
        floor = min(floors, key=_id_key) if floors else None
        if floor and floor != "0-0":
            await self.redis.xtrim(keys.CDR_STREAM, minid=floor, approximate=True)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)

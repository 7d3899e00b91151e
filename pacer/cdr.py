"""The CDR archive: every call's record, durably, in SQLite.

Whoever finishes a call (the runtime, an agent's disposition, the SMS sender) appends its record
to one Redis stream, `dialer:cdr` (`record()`); appending is one XADD, cheap on the hot path.
The `Recorder` reads the stream in a consumer group and writes batches into SQLite (WAL,
`synchronous=FULL`: a batch is on disk when its transaction commits). Only then does it
acknowledge the entries, so a recorder killed at any point loses nothing: the next one takes the
dead one's pending entries over (XAUTOCLAIM). A record written twice - committed, then the
recorder died before its XACK - is stored once: the stream id is the table's primary key.

Every archive file is complete. A file carries an id (made when the file is created); its
recorders read in their own consumer group, `archive:<id>`, so each file gets every record.
Processes sharing one file (one state directory) take turns: one records while it holds the
lease `dialer:cdr:lease:<id>` (renewed every 2 s; another takes over 10 s after it stops). The
stream is trimmed behind what every archive seen in the last hour has acknowledged (an archive
silent for longer misses what is trimmed meanwhile).

`Archive` reads the file: a contact's calls, and the latest call and SMS of many contacts for
`results.csv`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from pacer.redis_async import connect

log = logging.getLogger("dialer.cdr")

STREAM: Final = "dialer:cdr"
ARCHIVES: Final = "dialer:cdr:archives"
"""hash: archive id -> {"host", "path", "seen"} (JSON), renewed by the recording recorder."""
LEASE_MS: Final = 10_000
ACTIVE_S: Final = 3600.0


def group_of(archive_id: str) -> str:
    return f"archive:{archive_id}"


def lease_of(archive_id: str) -> str:
    return f"dialer:cdr:lease:{archive_id}"

Kind = Literal["call", "sms"]


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


async def record(redis: aioredis.Redis, *records: CallRecord) -> list[str]:
    """Append records to the CDR stream; answers their ids."""
    if len(records) == 1:
        return [str(await redis.xadd(STREAM, {"r": records[0].to_json()}))]
    async with redis.pipeline(transaction=False) as pipe:
        for r in records:
            pipe.xadd(STREAM, {"r": r.to_json()})
        return [str(x) for x in await pipe.execute()]


_COLUMNS: Final = (
    "id", "kind", "campaign", "number", "attempt", "call_id", "dialled_at", "ringing_at", "answered_at",
    "ended_at", "sip_code", "outcome", "dtmf", "agent", "answers", "sms_status", "detail", "recorded_at",
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS cdr (
    id TEXT PRIMARY KEY,        -- the Redis stream id: recording an entry twice stores it once
    kind TEXT NOT NULL,
    campaign TEXT NOT NULL,
    number TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    call_id TEXT,
    dialled_at REAL, ringing_at REAL, answered_at REAL, ended_at REAL,
    sip_code INTEGER,
    outcome TEXT NOT NULL,
    dtmf TEXT NOT NULL DEFAULT '',
    agent TEXT,
    answers TEXT,               -- JSON, survey answers by question id
    sms_status TEXT,
    detail TEXT NOT NULL DEFAULT '',
    recorded_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cdr_contact ON cdr (campaign, number, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def open_db(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # committed = on disk, WAL included
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('archive_id', ?)", (uuid.uuid4().hex[:16],))
    return db


def archive_id(db: sqlite3.Connection) -> str:
    return str(db.execute("SELECT value FROM meta WHERE key = 'archive_id'").fetchone()[0])


def _row(entry_id: str, raw: str, now: float) -> tuple[Any, ...]:
    r = json.loads(raw)
    answers = r.get("answers")
    return (
        entry_id, r.get("kind", "call"), r["campaign"], r["number"], int(r.get("attempt", 0)), r.get("call_id"),
        r.get("dialled_at"), r.get("ringing_at"), r.get("answered_at"), r.get("ended_at"), r.get("sip_code"),
        r["outcome"], r.get("dtmf", ""), r.get("agent"), json.dumps(answers) if answers else None, r.get("sms_status"),
        r.get("detail", ""), now,
    )


def write_batch(db: sqlite3.Connection, entries: Sequence[tuple[str, dict[str, str]]]) -> int:
    """Insert stream entries in one transaction; answers how many were new. A malformed entry is
    stored as such (outcome `malformed`, its text in `detail`) rather than blocking the stream."""
    now = time.time()
    rows = []
    for entry_id, fields in entries:
        raw = fields.get("r", "")
        try:
            rows.append(_row(entry_id, raw, now))
        except (ValueError, KeyError, TypeError) as e:
            log.error("CDR entry %s is malformed (%s): kept as such", entry_id, e)
            rows.append((entry_id, "call", "?", "?", 0, None, None, None, None, None, None, "malformed", "", None,
                         None, None, raw[:2000], now))
    before = db.total_changes
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(f"INSERT OR IGNORE INTO cdr ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return db.total_changes - before


class Recorder:
    """Moves the CDR stream into SQLite while this process holds the recorder lease."""

    def __init__(self, redis_url: str, db_path: Path, *, consumer: str | None = None, batch: int = 2000,
                 block_ms: int = 500, claim_idle_ms: int = 30_000) -> None:
        self.redis_url = redis_url
        self.db_path = Path(db_path)
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.recorded = 0
        self.holding = False
        self.archive_id = ""

    async def run(self, stop: asyncio.Event) -> None:
        """Record until `stop` is set. Redis going away, or the stream or its group vanishing
        (a FLUSHALL), is waited out: the recorder logs it and starts again a second later."""
        redis = connect(self.redis_url)
        db = await asyncio.to_thread(open_db, self.db_path)
        self.archive_id = await asyncio.to_thread(archive_id, db)
        self.group, self.lease = group_of(self.archive_id), lease_of(self.archive_id)
        try:
            while not stop.is_set():
                try:
                    await self._record(redis, db, stop)
                except (RedisConnectionError, aioredis.ResponseError) as e:
                    log.warning("CDR recorder %s: %s; again in 1 s", self.consumer, e)
                    self.holding = False
                    await sleep_or_stop(stop, 1.0)
        finally:
            await redis.aclose()
            await asyncio.to_thread(db.close)

    async def _record(self, redis: aioredis.Redis, db: sqlite3.Connection, stop: asyncio.Event) -> None:
        try:
            await redis.xgroup_create(STREAM, self.group, id="0", mkstream=True)
        except aioredis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        last_renew = last_trim = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now - last_renew >= 2.0:
                last_renew = now
                was = self.holding
                self.holding = await self._lease(redis)
                if self.holding:
                    await redis.hset(ARCHIVES, self.archive_id, json.dumps(
                        {"host": socket.gethostname(), "path": str(self.db_path), "seen": time.time()}))
                if self.holding and not was:
                    log.info("CDR recorder %s: recording into %s", self.consumer, self.db_path)
                    await self._take_over(redis, db)
            if not self.holding:
                await sleep_or_stop(stop, 2.0)
                continue
            got = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], await redis.xreadgroup(
                self.group, self.consumer, {STREAM: ">"}, count=self.batch, block=self.block_ms))
            for _, entries in got:
                await self._commit(redis, db, entries)
            if now - last_trim >= 5.0:
                last_trim = now
                await self._trim(redis)
        # Stopping: what was read is committed and acknowledged above; give the lease up.
        if self.holding:
            await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                             1, self.lease, self.consumer)
            self.holding = False

    async def _lease(self, redis: aioredis.Redis) -> bool:
        got = await redis.eval(
            "local v = redis.call('GET', KEYS[1]) "
            "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
            "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0",
            1, self.lease, self.consumer, LEASE_MS,
        )
        return bool(got)

    async def _commit(self, redis: aioredis.Redis, db: sqlite3.Connection, entries: list[tuple[str, dict[str, str]]]) -> None:
        if not entries:
            return
        self.recorded += await asyncio.to_thread(write_batch, db, entries)
        await redis.xack(STREAM, self.group, *[e[0] for e in entries])  # only after the commit

    async def _take_over(self, redis: aioredis.Redis, db: sqlite3.Connection) -> None:
        """Entries read by a recorder that died before acknowledging them."""
        start = "0-0"
        while True:
            reply = await redis.xautoclaim(STREAM, self.group, self.consumer, min_idle_time=0, start_id=start, count=self.batch)
            start, entries = reply[0], [e for e in reply[1] if e[1] is not None]
            await self._commit(redis, db, entries)
            if start == "0-0":
                return

    async def _trim(self, redis: aioredis.Redis) -> None:
        """Drop what every archive active in the last hour has acknowledged."""
        seen = cast(dict[str, str], await redis.hgetall(ARCHIVES))
        active = {group_of(a) for a, v in seen.items() if time.time() - float(json.loads(v)["seen"]) < ACTIVE_S}
        floors = []
        for g in await redis.xinfo_groups(STREAM):
            if g["name"] not in active:
                continue
            pending = await redis.xpending(STREAM, g["name"])
            floors.append(pending["min"] if pending["pending"] else g["last-delivered-id"])
        floor = min(floors, key=_id_key) if floors else None
        if floor and floor != "0-0":
            await redis.xtrim(STREAM, minid=floor, approximate=True)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


class Archive:
    """Reads the CDR file (a connection per call: the API reads from its thread pool)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    def _db(self) -> sqlite3.Connection | None:
        if not self.db_path.exists():
            return None
        db = open_db(self.db_path, readonly=True)
        db.row_factory = sqlite3.Row
        return db

    def calls(self, campaign: str, number: str) -> list[dict[str, Any]]:
        """Every record of one contact, oldest first."""
        db = self._db()
        if db is None:
            return []
        with db:
            rows = db.execute("SELECT * FROM cdr WHERE campaign = ? AND number = ? ORDER BY id", (campaign, number)).fetchall()
        db.close()
        return [_as_dict(r) for r in rows]

    def latest(self, campaign: str, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Per number: calls made, and the last call's SIP code, outcome and DTMF, and the last
        SMS status."""
        nums = list(numbers)
        db = self._db()
        out: dict[str, dict[str, Any]] = {}
        if db is None or not nums:
            return out
        for i in range(0, len(nums), 500):
            chunk = nums[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT number, kind, sip_code, outcome, dtmf, sms_status FROM cdr WHERE campaign = ? AND number IN ({marks}) "
                "ORDER BY number, id", (campaign, *chunk)).fetchall()
            for r in rows:
                d = out.setdefault(r["number"], {"calls": 0, "sip_code": None, "dtmf": "", "sms_status": None})
                if r["kind"] == "sms":
                    d["sms_status"] = r["sms_status"]
                else:
                    d["calls"] += 1
                    d["sip_code"], d["dtmf"] = r["sip_code"], r["dtmf"]
        db.close()
        return out


def _as_dict(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["answers"] = json.loads(d["answers"]) if d.get("answers") else {}
    return d

"""The CDR archive: every call's record, durably, in SQLite.

Whoever finishes a call (the runtime, an agent's disposition, the SMS sender) appends its record
to one Redis stream, `dialer:cdr` (`store.cdr.append`); appending is one XADD, cheap on the hot
path.
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
from pathlib import Path
from typing import Any, Final

from store import Store, keys
from store.cdr import CallRecord, group_of
from store.errors import Refused, Slow, Unavailable

log = logging.getLogger("dialer.cdr")

STREAM: Final = keys.CDR_STREAM
ARCHIVES: Final = keys.CDR_ARCHIVES
lease_of = keys.cdr_lease

__all__ = ["ARCHIVES", "STREAM", "Archive", "CallRecord", "Recorder", "archive_id", "group_of", "lease_of", "open_db",
           "write_batch"]


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
        store = Store(self.redis_url, max_connections=4)
        db = await asyncio.to_thread(open_db, self.db_path)
        self.archive_id = await asyncio.to_thread(archive_id, db)
        try:
            while not stop.is_set():
                try:
                    await self._record(store, db, stop)
                except (Unavailable, Slow, Refused) as e:
                    log.warning("CDR recorder %s: %s; again in 1 s", self.consumer, e)
                    self.holding = False
                    await sleep_or_stop(stop, 1.0)
        finally:
            await store.close()
            await asyncio.to_thread(db.close)

    async def _record(self, store: Store, db: sqlite3.Connection, stop: asyncio.Event) -> None:
        cdr = store.cdr
        await cdr.ensure_group(self.archive_id)
        last_renew = last_trim = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now - last_renew >= 2.0:
                last_renew = now
                was = self.holding
                self.holding = await cdr.hold(self.archive_id, self.consumer, str(self.db_path))
                if self.holding and not was:
                    log.info("CDR recorder %s: recording into %s", self.consumer, self.db_path)
                    await self._take_over(store, db)
            if not self.holding:
                await sleep_or_stop(stop, 2.0)
                continue
            entries = await cdr.read(self.archive_id, self.consumer, self.batch, self.block_ms)
            await self._commit(store, db, entries)
            if now - last_trim >= 5.0:
                last_trim = now
                await cdr.trim()
        # Stopping: what was read is committed and acknowledged above; give the lease up.
        if self.holding:
            await cdr.let_go(self.archive_id, self.consumer)
            self.holding = False

    async def _commit(self, store: Store, db: sqlite3.Connection, entries: list[tuple[str, dict[str, str]]]) -> None:
        if not entries:
            return
        self.recorded += await asyncio.to_thread(write_batch, db, entries)
        await store.cdr.ack(self.archive_id, [e[0] for e in entries])  # only after the commit

    async def _take_over(self, store: Store, db: sqlite3.Connection) -> None:
        """Entries read by a recorder that died before acknowledging them."""
        start = "0-0"
        while True:
            start, entries = await store.cdr.claim_pending(self.archive_id, self.consumer, start, self.batch)
            await self._commit(store, db, entries)
            if start == "0-0":
                return


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

"""SMS requests and their states: at most one per subscriber per campaign, ever.

`request()` is one script (`lua/sms_request.lua`): the subscriber's entry in the campaign's SMS
hash is created only if absent (HSETNX), and only then is the message put in the campaign's
outbox stream. Asking twice sends once. A state is `state|detail|time`; the final states and
every receipt also append a CDR record (kind `sms`) in the same round trip.
"""

from __future__ import annotations

import re
import time
from typing import Final, cast

from store import keys
from store.cdr import CallRecord
from store.connection import Client
from store.errors import Refused
from store.scripts import Scripts
from store.steps import Steps

#: The outboxes' consumer group.
GROUP: Final = "sms"
FINAL: Final = ("sent", "delivered", "undelivered", "failed", "unknown")

Entries = list[tuple[str, dict[str, str]]]


class SmsStore:
    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self._scripts = Scripts(redis)

    async def request(self, cid: str, number: str, text: str, sender: str) -> bool:
        """Queue one SMS to `number` for campaign `cid`; False if this subscriber already had
        one requested in this campaign (then nothing is queued)."""
        if not re.fullmatch(r"[A-Za-z0-9 ]{1,11}", sender):
            raise ValueError(f"sender {sender!r}: an alphanumeric sender id is 1-11 letters, digits or spaces")
        if not text:
            raise ValueError("an SMS needs a text")
        added = await self._scripts.run("sms_request", [keys.sms_state(cid), keys.sms_outbox(cid)],
                                        [number, text, sender, f"{time.time():.3f}"])
        if added:
            await self.redis.sadd(keys.SMS_CAMPAIGNS, cid)
        return bool(added)

    async def state(self, cid: str, number: str) -> tuple[str, str] | None:
        """(state, detail) of the subscriber's SMS, None if none was requested."""
        raw = cast(str | None, await self.redis.hget(keys.sms_state(cid), number))
        if raw is None:
            return None
        state, detail, _ = raw.split("|", 2)
        return state, detail

    async def set_state(self, cid: str, number: str, state: str, detail: str) -> None:
        await self.redis.hset(keys.sms_state(cid), number, f"{state}|{detail}|{time.time():.3f}")

    async def final(self, cid: str, entry_id: str, number: str, state: str, detail: str) -> None:
        """A final state, its CDR, and the outbox entry acknowledged: one round trip (two on a
        cluster)."""
        rec = CallRecord(campaign=cid, number=number, kind="sms", outcome="sms", sms_status=state,
                         ended_at=time.time(), detail=detail)
        # On a cluster (where a plain pipeline's parts for different nodes go in no order): the
        # CDR first, then the state and the acknowledgement (the campaign's slot). Stopped in
        # between, the entry comes back with its "sending" state, which the next sender ends as
        # "unknown" (a second record, never a second message); the other way round the entry
        # would come back final and be acknowledged with no record at all.
        steps = Steps(self.redis, atomic=False)
        steps.step().xadd(keys.CDR_STREAM, {"r": rec.to_json()})
        own = steps.step()
        own.hset(keys.sms_state(cid), number, f"{state}|{detail}|{time.time():.3f}")
        own.xack(keys.sms_outbox(cid), GROUP, entry_id)
        await steps.run()

    async def campaigns(self) -> set[str]:
        """Campaigns with an outbox."""
        return cast(set[str], await self.redis.smembers(keys.SMS_CAMPAIGNS))

    async def ensure_group(self, cid: str) -> None:
        try:
            await self.redis.xgroup_create(keys.sms_outbox(cid), GROUP, id="0", mkstream=True)
        except Refused as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def reclaim(self, cid: str, consumer: str, idle_ms: int, count: int) -> Entries:
        """Entries refused earlier and due again, or left by a sender that died."""
        reply = await self.redis.xautoclaim(keys.sms_outbox(cid), GROUP, consumer, min_idle_time=idle_ms,
                                            start_id="0-0", count=count)
        return [e for e in reply[1] if e[1] is not None]

    async def read(self, cid: str, consumer: str, count: int, block_ms: int) -> Entries:
        got = cast(list[tuple[str, Entries]], await self.redis.xreadgroup(
            GROUP, consumer, {keys.sms_outbox(cid): ">"}, count=count, block=block_ms))
        return [e for _, es in got for e in es]

    async def ack(self, cid: str, entry_id: str) -> None:
        await self.redis.xack(keys.sms_outbox(cid), GROUP, entry_id)

    # -- delivery receipts ---------------------------------------------------------------------------

    async def remember_id(self, msg_id: str, cid: str, number: str) -> None:
        """The SMSC's message id of a sent SMS, to match its receipt."""
        await self.redis.hset(keys.SMS_IDS, msg_id, f"{cid}|{number}")

    async def known_id(self, msg_id: str) -> bool:
        return bool(await self.redis.hexists(keys.SMS_IDS, msg_id))

    async def receipt(self, msg_id: str, stat: str) -> str | None:
        """Record a delivery receipt (`stat:DELIVRD` ...) and its CDR; answers the new state,
        None if the message id is not (yet) known."""
        ref = cast(str | None, await self.redis.hget(keys.SMS_IDS, msg_id))
        if ref is None:
            return None
        cid, number = ref.split("|", 1)
        status = "delivered" if stat == "DELIVRD" else "undelivered"
        rec = CallRecord(campaign=cid, number=number, kind="sms", outcome="sms", sms_status=status,
                         ended_at=time.time(), detail=f"{msg_id} {stat}")
        # On a cluster: the state and the CDR (in parallel), then the message id goes - it is
        # what matches a receipt, so a receipt recorded halfway is matched again if repeated.
        steps = Steps(self.redis, atomic=False)
        done = steps.step()
        done.hset(keys.sms_state(cid), number, f"{status}|{stat}|{time.time():.3f}")
        done.xadd(keys.CDR_STREAM, {"r": rec.to_json()})
        steps.step().hdel(keys.SMS_IDS, msg_id)
        await steps.run()
        return status

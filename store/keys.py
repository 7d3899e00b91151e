"""Every Redis key name the Python side uses, in one place.

The call queue's own keys (a partition's `:ready`, `:retry`, state buckets, leases ...) are
named by the Rust core (`core-rs/src/keys.rs`, `core-rs/src/queue/lua/`); this module asks the
core for their bases (`dialer_core.partition_key`, `dialer_core.campaign_meta_key`) instead of
spelling them again. Everything else is named here and nowhere else.

Hash tags: a campaign's keys share `{c:<id>}` (the queue's meta key carries it too), a
partition's queue keys share `{c:<id>:p<n>}` (or that with a suffix spreading a campaign's
partitions over a cluster's slots: `dialer_core.partition_key`), so each script touches one slot and the same code
runs on a Redis Cluster. The registries (`dialer:*`), each agent's record and each handed call's
record are keys of their own (no tag: each its own slot); a change that writes one of them with
a campaign's keys is written in ordered steps, one slot each (`store/steps.py`).
"""

from __future__ import annotations

from typing import Final

import dialer_core

# -- registries -------------------------------------------------------------------------------

#: zset: campaign id -> creation time (ms).
CAMPAIGNS: Final = "dialer:campaigns"
#: zset: the dialing nodes alive (node -> last scan, ms); partitions are shared out among them.
NODES: Final = "dialer:nodes"
#: hash: agent id -> {id, name, sip_uri} (JSON): the roster.
AGENTS: Final = "dialer:agents"
#: stream: {agent}: an agent's record changed (joined, left, break, call opened or closed), ~10,000
#: kept; the API's one reader wakes the agent screens' event streams with it.
AGENT_CHANGES: Final = "dialer:agents:changes"
#: hash: token SHA-256 (hex) -> {id, role, name, agent, created_at} (JSON).
TOKENS: Final = "dialer:tokens"
#: stream: every call's and SMS's record, read into the SQLite archives.
CDR_STREAM: Final = "dialer:cdr"
#: hash: archive id -> {host, path, seen} (JSON), renewed by the recording recorder.
CDR_ARCHIVES: Final = "dialer:cdr:archives"
#: set: campaigns with an SMS outbox.
SMS_CAMPAIGNS: Final = "dialer:sms:campaigns"
#: hash: SMSC message id -> "campaign|number" (to match delivery receipts).
SMS_IDS: Final = "dialer:sms:ids"


def cdr_lease(archive_id: str) -> str:
    """string: the recorder writing into one archive file (expires unless renewed)."""
    return f"dialer:cdr:lease:{archive_id}"


# -- one campaign ({c:<id>}) ---------------------------------------------------------------------


def campaign(cid: str) -> str:
    """hash: spec (JSON), state, created_at, updated_at, created_by, approved_by, revision."""
    return f"{{c:{cid}}}:api"


def events(cid: str) -> str:
    """stream: the campaign's events (type, data JSON), about 10,000 kept."""
    return f"{{c:{cid}}}:events"


def live(cid: str) -> str:
    """hash: partition -> the figures of the pacer dialling it (JSON, with the wall time `at` it
    was written); the hash expires when no pacer writes any more, a field when it is older than
    `campaigns.LIVE_TTL_S` (a string holding one pacer's figures before)."""
    return f"{{c:{cid}}}:live:p"


def present(cid: str) -> str:
    """set: agents joined to the campaign."""
    return f"{{c:{cid}}}:present"


def answers(cid: str) -> str:
    """hash: number -> survey answers (JSON) from dispositions."""
    return f"{{c:{cid}}}:answers"


def partition_owner(cid: str, partition: int) -> str:
    """string: the node that owns (dials) a campaign partition, expiring unless renewed."""
    return f"{{c:{cid}}}:owner:{partition}"


def dial_set(cid: str, partition: int) -> str:
    """zset: manual and preview customers handed to agents and not yet dialled, call id -> when
    the dialer places the call (epoch seconds; +inf until the agent says so)."""
    return f"{{c:{cid}}}:dial:{partition}"


def dialing(cid: str, partition: int) -> str:
    """hash: manual and preview calls being placed, call id -> the node placing them."""
    return f"{{c:{cid}}}:dialing:{partition}"


def sms_state(cid: str) -> str:
    """hash: number -> "state|detail|time" of the subscriber's one SMS."""
    return f"{{c:{cid}}}:sms"


def sms_outbox(cid: str) -> str:
    """stream: SMS to send, {number, text, sender}; consumer group "sms"."""
    return f"{{c:{cid}}}:sms:outbox"


def campaign_control_keys(cid: str) -> list[str]:
    """The campaign's own records (not the queue's), removed when it is deleted."""
    return [campaign(cid), events(cid), present(cid), answers(cid), live(cid)]


# -- the call queue (named by the Rust core) -------------------------------------------------------


def queue_meta(cid: str) -> str:
    """hash: the queue's campaign-wide facts (partitions)."""
    return dialer_core.campaign_meta_key(cid)


def partition_runs(cid: str, partition: int, *, partitions: int) -> str:
    """hash: incarnation id -> how it places the partition's calls (JSON: `pacer/orphans.py`
    `RunInfo`), for whoever ends its calls if it dies. In the partition's slot, beside the dial
    marks that name the incarnation; removed with the queue."""
    return dialer_core.partition_key(cid, partition, partitions=partitions) + ":run"


def incarnation(inc: str) -> str:
    """string: a dialer process alive (its node name), expiring unless renewed (like a partition
    lease): the calls its dial marks name are not orphans while it exists."""
    return f"dialer:incarnation:{inc}"


def queue_partition_pattern(cid: str, partition: int, *, partitions: int) -> str:
    """A SCAN pattern matching every queue key of one partition."""
    return dialer_core.partition_key(cid, partition, partitions=partitions) + "*"


# -- agents ------------------------------------------------------------------------------------------


def agent(aid: str) -> str:
    """hash: the campaigns an agent joined ("c:<id>" -> time), its open call ("call"), "away"."""
    return f"dialer:agent:{aid}"


def call(call_id: str) -> str:
    """hash: a customer handed to an agent: campaign, number, token, partition, agent, ..."""
    return f"dialer:call:{call_id}"

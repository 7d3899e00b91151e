"""Redis keys of a campaign's control records, shared by the API (which writes settings) and the
pacer (which follows them and writes its live figures). A campaign's keys share the hash tag
`{c:<id>}` with the call queue's meta key, so one script touches one slot."""

from __future__ import annotations


def api_key(cid: str) -> str:
    """hash: spec (JSON), state, created_at, updated_at, created_by, approved_by, revision."""
    return f"{{c:{cid}}}:api"


def events_key(cid: str) -> str:
    """stream: the campaign's events (type, data JSON)."""
    return f"{{c:{cid}}}:events"


def live_key(cid: str) -> str:
    """string: the running pacer's figures (JSON), expiring when it stops writing them."""
    return f"{{c:{cid}}}:live"


def present_key(cid: str) -> str:
    """set: agents joined to the campaign."""
    return f"{{c:{cid}}}:present"


def answers_key(cid: str) -> str:
    """hash: number -> survey answers (JSON)."""
    return f"{{c:{cid}}}:answers"


#: hash: agent id -> {id, name, sip_uri} (JSON): the roster.
AGENTS = "dialer:agents"


def agent_key(aid: str) -> str:
    """hash: the campaigns an agent joined ("c:<id>" -> time) and its open call ("call")."""
    return f"dialer:agent:{aid}"


def call_key(call_id: str) -> str:
    """hash: a customer handed to an agent: campaign, number, token, partition, agent, ..."""
    return f"dialer:call:{call_id}"


def dial_key(cid: str, partition: int) -> str:
    """zset: manual and preview customers handed to agents and not yet dialled, call id -> when
    the dialer places the call (epoch seconds; +inf until the agent says so)."""
    return f"{{c:{cid}}}:dial:{partition}"


def dialing_key(cid: str, partition: int) -> str:
    """hash: manual and preview calls being placed, call id -> the node placing them."""
    return f"{{c:{cid}}}:dialing:{partition}"


def lease_key(cid: str, partition: int) -> str:
    """string: the node that owns (dials) a campaign partition, expiring unless renewed."""
    return f"{{c:{cid}}}:owner:{partition}"

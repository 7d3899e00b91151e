"""The store: the only code that knows Redis key names, scripts and the Redis client.

One class per domain, each over a client (`Store` opens one and holds them all):
    campaigns.Campaigns   campaign records, the lifecycle (TRANSITIONS), events, live figures
    agents.Agents         the roster, presence, breaks, each agent's one open call
    dialsets.DialSets     manual and preview calls waiting to be dialled
    nodes.Nodes           dialing nodes and the partition leases they hold
    sms.SmsStore          SMS requests (at most one per subscriber), states, outboxes, receipts
    cdr.CdrStream         the CDR stream: append, and the recorders' consumer groups and leases
    tokens.Tokens         API tokens (digests and roles)
    queue.Queue/Queues    the asyncio face of the Rust call queue (its keys are the core's)
keys.py names every key (asking the core for the queue's); scripts.py loads `lua/*.lua`;
connection.py opens clients (one Redis or a Redis Cluster, with timeouts); steps.py writes
changes that span hash slots in a safe order; errors.py has the exceptions callers catch.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import RedisCluster

from store.agents import Agents
from store.campaigns import Campaigns
from store.cdr import CdrStream
from store.connection import connect
from store.dialsets import DialSets
from store.nodes import Nodes
from store.sms import SmsStore
from store.tokens import Tokens


class Store:
    """Every domain of the store on one client (a connection pool) for `url`."""

    def __init__(self, url: str, *, max_connections: int = 64) -> None:
        self.url = url
        self._client = connect(url, max_connections=max_connections)
        self.campaigns = Campaigns(self._client)
        self.agents = Agents(self._client)
        self.dialsets = DialSets(self._client)
        self.nodes = Nodes(self._client)
        self.sms = SmsStore(self._client)
        self.cdr = CdrStream(self._client)
        self.tokens = Tokens(self._client)

    async def ping(self) -> None:
        """Redis answers (on a cluster: every primary does, so that every slot is served)."""
        if isinstance(self._client, RedisCluster):
            await self._client.ping(target_nodes=RedisCluster.PRIMARIES)
            return
        await self._client.ping()

    async def server_id(self) -> str:
        """The Redis server's run id: new at every start of redis-server (it may have come back
        without its last writes). On a cluster, the run ids of all its primaries: it changes
        when any of them restarts or a replica takes over (which may lack the last writes too)."""
        if isinstance(self._client, RedisCluster):
            c = await self._client.initialize()  # (the nodes are known once it is)
            infos = await asyncio.gather(*(c.info("server", target_nodes=n) for n in c.get_primaries()))
            return ",".join(sorted(str(i.get("run_id", "")) for i in infos))
        info = await self._client.info("server")
        return str(info.get("run_id", ""))

    async def close(self) -> None:
        await self._client.aclose()


__all__ = ["Store"]

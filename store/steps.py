"""Writes to keys of several hash slots, made in steps that each touch one slot.

A Redis Cluster runs a MULTI/EXEC only over keys of one hash slot (redis-py raises
`CrossSlotTransactionError` otherwise), and a plain pipeline's commands for different nodes go
out in parallel, in no order. A change that touches, say, a campaign's keys (`{c:<id>}`), an
agent's record (`dialer:agent:<id>`) and the agents' change stream is written as `Steps`:

- one Redis: every step is queued on one pipeline - with `atomic`, one MULTI/EXEC (all or
  nothing) - exactly as before clusters: one round trip;
- a cluster: each step is a plain pipeline of its own, sent once the one before it has answered:
  one round trip per step. A step's keys share one slot, so its commands go to one node on one
  connection and run in their order (others' commands may run between them). No step is a
  MULTI/EXEC there: redis-py 8.1's asyncio cluster client queues each command of a transaction
  through a thread it starts and joins (`TransactionStrategy.execute_command`), which blocks the
  event loop (and `_Cluster.pipeline` refuses it). The callers' steps of several commands pair a
  fact with the event that reports it: they need the order, not atomicity.

On a cluster a failure, or the process dying, between two steps leaves the earlier steps written
and the later ones not, and readers may see the state between two steps (or within one). So each
caller orders its steps so that every such prefix is a state the readers accept and the same
call made again completes, and says why in a comment.
"""

from __future__ import annotations

from store.connection import Client, Pipe, is_cluster


class Steps:
    """`step()` hands out the pipeline for the next step's commands; `run()` writes them."""

    def __init__(self, client: Client, *, atomic: bool) -> None:
        """`atomic`: on one Redis, all the steps in one MULTI/EXEC."""
        self._client = client
        self._one: Pipe | None = None if is_cluster(client) else client.pipeline(transaction=atomic)
        self._steps: list[Pipe] = []

    def step(self) -> Pipe:
        """The pipeline to queue the next step's commands on (on a cluster: a new one; the
        commands of a step should share one hash slot, for their order)."""
        if self._one is not None:
            return self._one
        pipe = self._client.pipeline(transaction=False)
        self._steps.append(pipe)
        return pipe

    async def run(self) -> None:
        # (A pipeline resets itself when executed; one never executed holds no connection.)
        for pipe in [self._one] if self._one is not None else self._steps:
            if len(pipe):
                await pipe.execute()


def unlink(pipe: Pipe, *names: str) -> None:
    """Queue UNLINK of `names` (one hash slot) on a pipeline of either kind: redis-py's cluster
    pipeline has `unlink` as a coroutine taking one key (`pipe.unlink(...)` unawaited there
    queues nothing)."""
    pipe.execute_command("UNLINK", *names)

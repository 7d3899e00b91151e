"""A claimer process for the concurrency tests: claims and completes until the queue is empty,
writing every number it completed to a file; or, with --hold, claims once, says so and waits to
be killed (bounded: it exits by itself after 60 s). With --threads N, N claimers (each its own
queue handle) in this process; with --partitions P, each goes round the campaign's P partitions.
With --ride-out S (for failover tests): a Redis that is unreachable is waited out (up to S seconds
at a time), a claim whose reply was lost comes back when its lease ends, a completion whose reply
was lost is sent again (answered "stale" if it had landed), and after Redis lost acknowledged
writes (`RedisRewound`) the partition is reasserted; every line written is "<number> <time> <partition>"
of a claim, so the test can count contacts handed out twice and the time without claims."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO, TypeVar

import dialer_core as dc

T = TypeVar("T")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("campaign")
    p.add_argument("out")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--hold", type=int, default=0, help="claim this many, then wait to be killed")
    p.add_argument("--now", type=float)
    p.add_argument("--lease", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--pause", type=float, default=0.0, help="seconds between one thread's batches")
    p.add_argument("--ride-out", type=float, default=0.0)
    a = p.parse_args()
    with open(a.out, "w") as out:
        if a.hold:
            q = dc.CallQueue(a.url, a.campaign)
            claims = q.claim(a.hold, now=a.now, lease_s=a.lease)
            out.write("".join(c.number + "\n" for c in claims))
            out.flush()
            print("held", len(claims), flush=True)
            time.sleep(60)
            return 1
        lock = threading.Lock()
        codes: list[int] = []
        threads = [threading.Thread(target=lambda i=i: codes.append(_drain(a, i, out, lock))) for i in range(a.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return max(codes, default=3)


def _drain(a: argparse.Namespace, first: int, out: TextIO, lock: threading.Lock) -> int:
    """Claim and complete until every partition is empty; starts at partition `first`."""
    q = dc.CallQueue(a.url, a.campaign)
    empty: set[int] = set()
    p = first % a.partitions
    while len(empty) < a.partitions:
        p = (p + 1) % a.partitions
        if a.ride_out:
            claims = _ride_out(a, lambda: q.claim(a.batch, partition=p, lease_s=a.lease), q, p)
        else:
            claims = q.claim(a.batch, partition=p, lease_s=a.lease)
        if not claims:
            empty.add(p)
            if a.ride_out and len(empty) == a.partitions:
                # Leases whose claim replies were lost come back when they end: look again then.
                stats = _ride_out(a, q.stats, q, p)
                if stats["leased"] or stats["ready"] or stats["retry_due"] or stats["retry_waiting"]:
                    empty.clear()
                    time.sleep(0.2)
            continue
        empty.discard(p)
        if a.ride_out:
            with lock:
                out.write("".join(f"{c.number} {time.time():.3f} {c.partition}\n" for c in claims))
        items = [(c, "answered") for c in claims]
        results = _ride_out(a, lambda: q.complete(items), q, p) if a.ride_out else q.complete(items)
        bad = [c.number for c, r in zip(claims, results) if r != "final" and not (a.ride_out and r == "stale")]
        if bad:
            print("not final:", bad[:5], file=sys.stderr)
            return 2
        if not a.ride_out:
            with lock:
                out.write("".join(c.number + "\n" for c in claims))
        if a.pause:
            time.sleep(a.pause)
    return 0


def _ride_out(a: argparse.Namespace, f: Callable[[], T], q: dc.CallQueue, p: int) -> T:
    deadline = time.monotonic() + a.ride_out
    while True:
        try:
            return f()
        except dc.RedisRewound:
            q.reassert([], [], partition=p)
        except dc.RedisUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())

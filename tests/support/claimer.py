"""A claimer process for the concurrency tests: claims and completes until the queue is empty,
writing every number it completed to a file; or, with --hold, claims once, says so and waits to
be killed (bounded: it exits by itself after 60 s). With --threads N, N claimers (each its own
queue handle) in this process; with --partitions P, each goes round the campaign's P partitions."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import TextIO

import dialer_core as dc


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
        claims = q.claim(a.batch, partition=p, lease_s=a.lease)
        if not claims:
            empty.add(p)
            continue
        empty.discard(p)
        results = q.complete([(c, "answered") for c in claims])
        bad = [c.number for c, r in zip(claims, results) if r != "final"]
        if bad:
            print("not final:", bad[:5], file=sys.stderr)
            return 2
        with lock:
            out.write("".join(c.number + "\n" for c in claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())

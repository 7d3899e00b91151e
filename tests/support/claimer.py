"""A claimer process for the concurrency tests: claims and completes until the queue is empty,
writing every number it completed to a file; or, with --hold, claims once, says so and waits to
be killed (bounded: it exits by itself after 60 s)."""

from __future__ import annotations

import argparse
import sys
import time

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
    a = p.parse_args()
    q = dc.CallQueue(a.url, a.campaign)
    with open(a.out, "w") as out:
        if a.hold:
            claims = q.claim(a.hold, now=a.now, lease_s=a.lease)
            out.write("".join(c.number + "\n" for c in claims))
            out.flush()
            print("held", len(claims), flush=True)
            time.sleep(60)
            return 1
        while True:
            claims = q.claim(a.batch, lease_s=a.lease)
            if not claims:
                return 0
            results = q.complete([(c, "answered") for c in claims])
            bad = [c.number for c, r in zip(claims, results) if r != "final"]
            if bad:
                print("not final:", bad[:5], file=sys.stderr)
                return 2
            out.write("".join(c.number + "\n" for c in claims))


if __name__ == "__main__":
    sys.exit(main())

"""`dialer demo` (`make demo`): what the dialer does today, for real, end to end.

An embedded redis-server, a generated list of Vietnamese subscribers, a do-not-call list, the
import with the seed campaign's exclusions (VIP, GOLD, DIAMOND), then dialling rounds against
the call queue. The SIP gateway is not built yet (its own issue), so each call's outcome is drawn
from a seeded distribution; everything else - claims under leases, retries after a delay, the
two-attempt cap, the suppression check at claim time - is the real queue in Redis.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path


import dialer_core

from api.embedded_redis import EmbeddedRedis

CAMPAIGN = "demo"
OUTCOMES = [("answered", 0.45), ("no_answer", 0.35), ("busy", 0.10), ("failed", 0.10)]
RETRY_DELAY_S = 3600.0


def _line(label: str, value: object) -> None:
    print(f"  {label:<34} {value:>14,}" if isinstance(value, int) else f"  {label:<34} {value:>14}")


def _dial_round(q: dialer_core.CallQueue, now: float, rng: random.Random) -> dict[str, int]:
    """Claim everything due at `now` in batches of 1000 and complete each with a drawn outcome."""
    results: dict[str, int] = {}
    names = [o for o, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    while True:
        claims = q.claim(1000, lease_s=120.0, now=now)
        if not claims:
            return results
        outcomes = rng.choices(names, weights, k=len(claims))
        for r in q.complete([(c, o) for c, o in zip(claims, outcomes)], now=now + 30.0):
            results[r] = results.get(r, 0) + 1


def run(rows: int = 200_000, keep: bool = False, redis_url: str | None = None) -> int:
    state = Path(tempfile.mkdtemp(prefix="dialer-demo-"))
    server = None
    try:
        print(f"dialer demo: {rows:,} subscribers, state in {state}")
        if redis_url is None:
            server = EmbeddedRedis(state)
            redis_url = server.start()
            print(f"  embedded redis-server (AOF, appendfsync everysec) at {redis_url}")
        contacts, dnc = state / "subscribers.csv", state / "do-not-call.txt"
        sample = dialer_core.generate_sample(contacts, rows, seed=7, suppression_path=dnc, suppression_ratio=0.01)
        print(f"\n1. sample list {contacts.name}: {sample['rows']:,} rows "
              f"({sample['invalid']:,} invalid, {sample['duplicates']:,} repeated), do-not-call list: {sample['suppressed']:,}")

        lst = dialer_core.load_suppression_list(redis_url, "dnc", dnc, country="VN")
        print(f"\n2. suppression list dnc: {lst['total']:,} numbers")

        started = time.perf_counter()
        report = dialer_core.import_contacts(
            redis_url, contacts, CAMPAIGN, country="VN", suppression_lists=["dnc"],
            exclusions=["segment in {VIP, GOLD, DIAMOND}"],
        )
        took = time.perf_counter() - started
        print(f"\n3. import into campaign {CAMPAIGN!r} ({report['read'] / took:,.0f} rows/s):")
        for key in ("read", "accepted", "rejected", "duplicates", "suppressed", "excluded"):
            _line(key, report[key])
        for r in report["rejections"][:3]:
            print(f"    e.g. line {r['line']}: {r['value']!r}: {r['reason']}")

        q = dialer_core.CallQueue(redis_url, CAMPAIGN, max_attempts=2, retry_delay_s=RETRY_DELAY_S)
        # A number put on the do-not-call list after the import is still never dialled.
        late = state / "late-dnc.txt"
        first = q.claim(1, now=time.time())[0]
        q.complete([dialer_core.Completion(first.number, first.token, "released", release=True)])
        late.write_text(first.number + "\n")
        dialer_core.load_suppression_list(redis_url, "dnc", late, country="VN", mode="append")
        print(f"\n4. {first.number} added to dnc after the import")

        rng = random.Random(7)
        t0 = time.time()
        print("\n5. first dialling round (outcomes simulated: the SIP gateway is not built yet):")
        for key, value in sorted(_dial_round(q, t0, rng).items()):
            _line(key, value)
        stats = q.stats(now=t0 + 60)
        _line("waiting for retry (due in 1 h)", stats["retry_waiting"])

        print("\n6. one hour later, the retry round (max_attempts = 2):")
        for key, value in sorted(_dial_round(q, t0 + RETRY_DELAY_S + 60, rng).items()):
            _line(key, value)
        stats = q.stats(now=t0 + 2 * RETRY_DELAY_S)
        print("\n7. queue at the end:")
        for key in ("ready", "retry_waiting", "retry_due", "leased"):
            _line(key, stats[key])
        for key, value in sorted(stats["counters"].items()):
            _line(key, value)
        late_state = q.contact(first.number)
        print(f"\n   {first.number}: {late_state['state'] if late_state else '?'}, "
              f"last outcome {late_state['last_outcome'] if late_state else '?'}")

        mem = dialer_core.redis_info(redis_url)
        used = int(mem["used_memory"])
        print(f"\n8. Redis memory: {used / 1e6:,.1f} MB for {report['accepted']:,} contacts "
              f"with attributes and state ({used / max(report['accepted'], 1):,.0f} B each)")
        return 0
    finally:
        if server is not None:
            server.stop()
        if keep:
            print(f"\nstate kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)



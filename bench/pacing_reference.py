"""A straightforward Python/numpy implementation of `PacingEngine.decide`'s decision, the reference
the benchmark compares the Rust engine against (and a test checks it gives the same answers).

It decides from `PacingEngine.decision_inputs(now)`: the caps and progressive floor, the
controller's aim and margin `z`, the live-answer probability, and the tables of
`P(free within h)` / `P(live answer within h)` by elapsed time, plus every busy agent's elapsed time
and every ringing call's age. The estimators that build those tables refresh at most every 2 s
and are not part of the per-decision work on either side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import dialer_core


def table_at(step: float, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Read a table on the grid 0, step, 2*step ... by truncation; the last value holds beyond."""
    idx = np.clip((t * (1.0 / step)).astype(np.int64), 0, len(values) - 1)
    return values[idx]


def max_calls(mu0: float, var0: float, ringing: float, pn: float, p_rel_var: float, z: float, cap: int) -> int:
    """Largest n <= cap with mu0 + D(n) + z*sqrt(var0 + n*pn*(1-pn) + D(n)^2 * p_rel_var) <= 0,
    D(n) = ringing + n*pn (0 if n = 1 fails)."""

    def ok(n: int) -> bool:
        demand = ringing + n * pn
        var = var0 + n * pn * (1.0 - pn) + demand * demand * p_rel_var
        return bool(mu0 + demand + z * np.sqrt(max(var, 0.0)) <= 0.0)

    if cap == 0 or not ok(1):
        return 0
    lo, hi = 1, cap
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


class Reference:
    """The decision from `decision_inputs`; arrays are converted once, as a caller keeping its own
    state in numpy would hold them."""

    def __init__(self, inputs: dict[str, Any]) -> None:
        self.i = inputs
        self.talking = np.asarray(inputs["talking_elapsed"], dtype=np.float64)
        self.wrapping = np.asarray(inputs["wrap_elapsed"], dtype=np.float64)
        self.ringing = np.asarray(inputs["ringing_ages"], dtype=np.float64)
        self.tables = {
            k: [(step, np.asarray(v, dtype=np.float64)) for step, v in inputs[k]]
            for k in ("talk_free", "wrap_free", "ring_within")
        }

    def decide(self) -> int:
        i = self.i
        floor, cap = int(i["floor"]), int(i["cap"])
        if i["mode"] != "predictive" or i["aim"] <= 0.0 or cap <= floor:
            return min(floor, cap)
        best = cap
        for k in range(len(i["answer_by"])):
            g_t = table_at(*self.tables["talk_free"][k], self.talking)
            g_w = table_at(*self.tables["wrap_free"][k], self.wrapping)
            q = table_at(*self.tables["ring_within"][k], self.ringing)
            mu = i["waiting"] - i["ready"] - g_t.sum() - g_w.sum()
            var = (g_t * (1 - g_t)).sum() + (g_w * (1 - g_w)).sum() + (q * (1 - q)).sum()
            pn = i["p"] * i["answer_by"][k]
            best = max_calls(mu, var, q.sum(), pn, i["p_rel_var"], i["z"], best)
        return min(max(best, floor), cap)


def busy_campaign(
    agents: int = 200, in_flight: int = 600, seed: int = 1, live_rate: float = 0.1
) -> tuple[dialer_core.PacingEngine, float]:
    """A predictive engine mid-day: `agents` agents (most talking, some in wrap-up, a few ready),
    `in_flight` calls ringing, and an hour of history behind the estimates and the abandon budget
    (a `live_rate` share of calls answered by a person)."""
    rng = np.random.default_rng(seed)
    eng = dialer_core.PacingEngine(max_dial_ratio=5.0)
    events: list[tuple[float, int, str, str, str]] = []  # (time, order, kind, id, arg)
    hour = 3600.0
    # History: 8,000 calls over an hour; some answered by a person at ~8 s, the rest fail or ring out.
    for c in range(8000):
        t = rng.uniform(0, hour - 60)
        cid = f"h{c}"
        events.append((t, 0, "dial", cid, ""))
        if rng.random() < live_rate:
            events.append((t + rng.lognormal(np.log(8), 0.5), 1, "answer", cid, ""))
        else:
            events.append((t + rng.uniform(0.5, 25.0), 1, "unanswered", cid, "no_answer"))
    for a in range(agents):
        events.append((0.0, -1, "agent", f"a{a}", "ready"))
    # Talk and wrap cycles through the hour, ending in the state the benchmark decides in.
    now = hour
    for a in range(agents):
        t = rng.uniform(0, 120)
        while True:
            talk, wrap = rng.lognormal(np.log(100), 0.7), rng.lognormal(np.log(9), 0.4)
            if t + talk >= now:
                events.append((t, 2, "agent", f"a{a}", "talking") if a % 10 != 0 else (t, 2, "agent", f"a{a}", "ready"))
                break
            events.append((t, 2, "agent", f"a{a}", "talking"))
            events.append((t + talk, 3, "agent", f"a{a}", "wrap"))
            if t + talk + wrap >= now:
                break
            events.append((t + talk + wrap, 4, "agent", f"a{a}", "ready"))
            t += talk + wrap + rng.uniform(0, 5)
    for c in range(in_flight):
        events.append((now - rng.uniform(0.0, 24.0), 0, "dial", f"f{c}", ""))
    events.sort()
    answered: set[str] = set()
    for t, _, kind, ident, arg in events:
        if t >= now:
            continue
        if kind == "agent":
            eng.agent_state(ident, arg, t)  # type: ignore[arg-type]
        elif kind == "dial":
            eng.call_dialed(ident, t)
        elif kind == "answer":
            eng.call_answered(ident, t)
            answered.add(ident)
            # Connected at once, ended a little later (the talk itself is in the agent cycles).
            eng.call_connected(ident, t)
        elif kind == "unanswered":
            eng.call_unanswered(ident, t, arg)  # type: ignore[arg-type]
    for ident in sorted(answered):
        eng.call_ended(ident, now)
    return eng, now

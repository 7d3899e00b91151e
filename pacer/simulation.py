"""The pacing scenario grid: our engine beside the baselines, on the same seeded days.

Each cell is one simulated day (`dialer_core.simulate`, which releases the GIL, so a thread pool
runs cells in parallel). `dialer simulate` and `bench/bench_pacing_grid.py` both run it.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dialer_core

POLICIES: tuple[str, ...] = (
    "predictive", "progressive", "fixed_ratio", "vicidial_hard_limit", "vicidial_average", "erlang_b"
)
"""Ours first, then the baselines: progressive, a fixed dial level of 2 lines per agent, VICIdial's
two adaptive methods, Erlang-B."""

TEAMS = (5, 20, 50, 100, 200)
LIVE_RATES = (0.10, 0.25, 0.40)
TALK_MEANS = (60.0, 180.0, 300.0)
TARGETS = (0.03, 0.01)


@dataclass(frozen=True)
class Scenario:
    agents: int
    live_rate: float
    talk_mean_s: float
    target: float
    drift: float = 1.0

    @property
    def label(self) -> str:
        d = f" drift x{self.drift:g}" if self.drift != 1.0 else ""
        return f"{self.agents:>3} agents {self.live_rate:.0%} live {self.talk_mean_s:>3.0f}s talk cap {self.target:.0%}{d}"

    def params(self, hours: float, seed: int, days: int = 1, window_s: float = 86_400.0) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "live_rate": self.live_rate,
            "talk_mean_s": self.talk_mean_s,
            "drift": self.drift,
            "target_abandon_rate": self.target,
            "abandon_window_s": window_s,
            "duration_s": hours * 3600.0,
            "days": days,
            "seed": seed,
        }


def grid(quick: bool = False) -> list[Scenario]:
    """Team sizes 5-200 x live-answer rates 10-40 % x mean talk 60-300 s x caps 3 % and 1 %, plus a
    day whose answer rate drifts to half for every team size. `quick`: a corner of it."""
    if quick:
        cells = [Scenario(a, r, t, 0.03) for a in (5, 50) for r in (0.10, 0.40) for t in (60.0, 300.0)]
        return cells + [Scenario(50, 0.25, 180.0, 0.01), Scenario(50, 0.25, 180.0, 0.03, drift=0.5)]
    cells = [Scenario(a, r, t, c) for c in TARGETS for a in TEAMS for r in LIVE_RATES for t in TALK_MEANS]
    return cells + [Scenario(a, 0.25, 180.0, c, drift=0.5) for c in TARGETS for a in TEAMS]


@dataclass
class Cell:
    scenario: Scenario
    policy: str
    report: dict[str, Any]
    seed: int = 1
    hours: float = 8.0
    days: int = 1
    window_s: float = 86_400.0


@dataclass
class Summary:
    """What the grid shows, per policy and against the requirements."""

    mean_occupancy: dict[str, float] = field(default_factory=dict)
    mean_abandon_rate: dict[str, float] = field(default_factory=dict)
    #: Per policy: scenarios where some window's abandon rate went over the cap.
    over_cap_count: dict[str, int] = field(default_factory=dict)
    #: Scenarios where our worst window exceeded the cap (should be none).
    over_cap: list[str] = field(default_factory=list)
    #: Mean occupancy gain (points) of predictive over each baseline.
    gain_points: dict[str, float] = field(default_factory=dict)
    #: The same at equal or lower abandon: where the baseline abandoned less than predictive,
    #: predictive is run again with the baseline's abandon rate as its cap.
    matched_gain_points: dict[str, float] = field(default_factory=dict)
    #: Scenarios where a baseline's abandon rate was below ours (occupancy then compares unequal).
    baseline_abandons_less: dict[str, int] = field(default_factory=dict)
    #: Teams of 20+: the smallest gain over progressive (points).
    min_gain_over_progressive_20plus: float = math.nan


def run_grid(
    scenarios: Sequence[Scenario],
    policies: Sequence[str] = POLICIES,
    *,
    hours: float = 8.0,
    seed: int = 1,
    days: int = 1,
    window_s: float = 86_400.0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Cell]:
    """Simulate every scenario under every policy (the same seed per scenario for all policies:
    the i-th call dialled and the k-th call connected draw the same outcome and talk time).
    `days` > 1: days 24 h apart, so the `window_s` abandon window slides across nights."""
    jobs = [(i, s, p) for i, s in enumerate(scenarios) for p in policies]
    workers = workers or os.cpu_count() or 1
    cells: list[Cell | None] = [None] * len(jobs)

    def one(k: int) -> None:
        i, s, p = jobs[k]
        report = dict(dialer_core.simulate(p, **s.params(hours, seed + i, days, window_s)))  # type: ignore[arg-type]
        cells[k] = Cell(s, p, report, seed + i, hours, days, window_s)

    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Longest first (big teams, low answer rates): the pool drains evenly.
        order = sorted(range(len(jobs)), key=lambda k: -jobs[k][1].agents / jobs[k][1].live_rate)
        for _ in pool.map(one, order):
            done += 1
            if progress:
                progress(done, len(jobs))
    return [c for c in cells if c is not None]


def match_abandon(cells: Iterable[Cell], baseline: str, workers: int | None = None) -> dict[Scenario, dict[str, Any]]:
    """Predictive again, capped at the baseline's day abandon rate, wherever the baseline
    abandoned less than predictive: the comparison at equal or lower abandon."""
    cells = list(cells)
    ours = {c.scenario: c for c in cells if c.policy == "predictive"}
    todo = [
        (c.scenario, ours[c.scenario], c.report["abandon_rate"])
        for c in cells
        if c.policy == baseline and c.scenario in ours and c.report["abandon_rate"] < ours[c.scenario].report["abandon_rate"]
    ]

    def one(job: tuple[Scenario, Cell, float]) -> tuple[Scenario, dict[str, Any]]:
        s, cell, rate = job
        params = s.params(cell.hours, cell.seed, cell.days, cell.window_s) | {"target_abandon_rate": rate}
        return s, dict(dialer_core.simulate("predictive", **params))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return dict(pool.map(one, todo))


def summarize(cells: Iterable[Cell], matched: dict[str, dict[Scenario, dict[str, Any]]] | None = None) -> Summary:
    """`matched`: per baseline, `match_abandon`'s reruns."""
    cells = list(cells)
    by: dict[tuple[Scenario, str], dict[str, Any]] = {(c.scenario, c.policy): c.report for c in cells}
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    policies = list(dict.fromkeys(c.policy for c in cells))
    out = Summary()
    for p in policies:
        out.mean_occupancy[p] = statistics.fmean(by[s, p]["occupancy"] for s in scenarios)
        out.mean_abandon_rate[p] = statistics.fmean(by[s, p]["abandon_rate"] for s in scenarios)
        out.over_cap_count[p] = sum(by[s, p]["worst_window_abandon_rate"] > s.target + 1e-12 for s in scenarios)
    if "predictive" not in policies:
        return out
    for s in scenarios:
        ours = by[s, "predictive"]
        if ours["worst_window_abandon_rate"] > s.target + 1e-12:
            out.over_cap.append(s.label)
    for p in policies:
        if p == "predictive":
            continue
        out.gain_points[p] = 100.0 * (out.mean_occupancy["predictive"] - out.mean_occupancy[p])
        out.baseline_abandons_less[p] = sum(
            by[s, p]["abandon_rate"] < by[s, "predictive"]["abandon_rate"] for s in scenarios
        )
        if matched and p in matched:
            again = matched[p]
            out.matched_gain_points[p] = 100.0 * statistics.fmean(
                again.get(s, by[s, "predictive"])["occupancy"] - by[s, p]["occupancy"] for s in scenarios
            )
    if "progressive" in policies:
        gains = [
            100.0 * (by[s, "predictive"]["occupancy"] - by[s, "progressive"]["occupancy"])
            for s in scenarios
            if s.agents >= 20
        ]
        out.min_gain_over_progressive_20plus = min(gains) if gains else math.nan
    return out


def format_table(cells: Iterable[Cell]) -> str:
    """One row per scenario: occupancy, day abandon rate and worst-window rate for each policy."""
    cells = list(cells)
    by = {(c.scenario, c.policy): c.report for c in cells}
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    policies = list(dict.fromkeys(c.policy for c in cells))
    head = f"{'scenario':<48}" + "".join(f" | {p[:19]:^19}" for p in policies)
    sub = f"{'':<48}" + "".join(f" | {'occ':>5} {'aband':>6} {'worst':>6}" for _ in policies)
    lines = [head, sub, "-" * len(sub)]
    for s in scenarios:
        row = f"{s.label:<48}"
        for p in policies:
            r = by[s, p]
            row += f" | {r['occupancy']:>5.1%} {r['abandon_rate']:>6.2%} {r['worst_window_abandon_rate']:>6.2%}"
        lines.append(row)
    summary = summarize(cells)
    lines.append("-" * len(sub))
    lines.append(f"{'mean occupancy':<48}" + "".join(f" | {summary.mean_occupancy[p]:>5.1%} {'':>13}" for p in policies))
    return "\n".join(lines)


def plot(cells: Iterable[Cell], path: Path, scenarios: Sequence[Scenario] | None = None) -> Path:
    """Occupancy and the window abandon rate over the day, one line per policy, one column per
    scenario (by default one per team size: 25 % live, 180 s talk, the first cap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = list(cells)
    by = {(c.scenario, c.policy): c.report for c in cells}
    all_s = list(dict.fromkeys(c.scenario for c in cells))
    policies = list(dict.fromkeys(c.policy for c in cells))
    if scenarios is None:
        picked: dict[int, Scenario] = {}
        for s in all_s:
            if s.drift == 1.0 and s.agents not in picked:
                picked[s.agents] = s
            if s.drift == 1.0 and s.live_rate == 0.25 and s.talk_mean_s == 180.0 and s.target == all_s[0].target:
                picked[s.agents] = s
        scenarios = list(picked.values())[:6]
    fig, axes = plt.subplots(2, len(scenarios), figsize=(4.2 * len(scenarios), 6.5), squeeze=False, sharex=True)
    for j, s in enumerate(scenarios):
        for p in policies:
            series = by[s, p]["series"]
            hours = [t / 3600.0 for t in series["t"]]
            axes[0][j].plot(hours, rolling_mean(series["occupancy"], 10), label=p, linewidth=1)
            axes[1][j].plot(hours, [100 * x for x in series["window_abandon_rate"]], label=p, linewidth=1)
        axes[1][j].axhline(100 * s.target, color="red", linestyle="--", linewidth=0.8, label="cap")
        axes[0][j].set_title(s.label.replace(" cap", "\ncap"), fontsize=8)
        axes[0][j].set_ylim(0, 1)
        axes[1][j].set_ylim(0, max(3 * 100 * s.target, 1))
        axes[1][j].set_xlabel("hour of the day")
    axes[0][0].set_ylabel("occupancy (talk + wrap), 10-step mean")
    axes[1][0].set_ylabel("abandon rate over the window, %")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rolling_mean(xs: Sequence[float], n: int) -> list[float]:
    """Trailing mean over up to `n` points."""
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= n:
            acc -= xs[i - n]
        out.append(acc / min(i + 1, n))
    return out

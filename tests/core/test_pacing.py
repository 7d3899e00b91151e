"""dialer_core.PacingEngine through its Python contract, and dialer_core.simulate."""

from __future__ import annotations

import pytest

import dialer_core
from dialer_core import PacingEngine


def team(eng: PacingEngine, n: int, now: float = 0.0) -> None:
    for i in range(n):
        eng.agent_state(f"a{i}", "ready", now)


def test_progressive_dials_one_line_per_idle_agent() -> None:
    eng = PacingEngine(mode="progressive")
    team(eng, 5)
    assert eng.decide(0.0) == 5
    for i in range(5):
        eng.call_dialed(f"c{i}", 0.0)
    assert eng.decide(1.0) == 0, "every ready agent already has a line"
    eng.call_unanswered("c0", 2.0, "busy")
    assert eng.decide(2.0) == 1
    eng.call_dialed("c5", 2.0)
    eng.call_answered("c1", 3.0)
    eng.call_connected("c1", 3.0)
    eng.agent_state("a0", "talking", 3.0)
    assert eng.decide(3.0) == 0, "4 ready agents, 4 lines ringing"


def test_manual_and_preview_never_dial_ahead_of_an_agent() -> None:
    for mode in ("manual", "preview"):
        eng = PacingEngine(mode=mode)
        team(eng, 3)
        eng.agent_state("a1", "away", 0.0)
        assert eng.decide(0.0) == 2


def test_stats_report_window_rate_and_estimates() -> None:
    eng = PacingEngine(target_abandon_rate=0.03, abandon_window_s=3600.0)
    team(eng, 2)
    for i in range(4):
        eng.call_dialed(f"c{i}", 0.0)
    eng.call_answered("c0", 5.0)
    eng.call_connected("c0", 5.0)
    eng.agent_state("a0", "talking", 5.0)
    eng.call_answered("c1", 6.0)
    eng.call_abandoned("c1", 8.0)
    eng.call_ended("c1", 9.0)
    eng.call_unanswered("c2", 9.0, "no_answer")
    eng.call_unanswered("c3", 9.5, "machine")
    s = eng.stats()
    assert s["window_live_answers"] == 2 and s["window_abandons"] == 1
    assert s["window_abandon_rate"] == pytest.approx(0.5)
    assert s["abandon_budget"] == pytest.approx(0.03 * 2 - 1)
    assert s["unanswered"] == {"no_answer": 1, "busy": 0, "failed": 0, "machine": 1}
    assert s["agents"] == {"ready": 1, "talking": 1, "wrap": 0, "away": 0}
    assert s["calls_connected"] == 1 and s["calls_ringing"] == 0
    eng.decide(10.0)
    assert s["mode"] == "predictive"
    assert 0.0 < eng.stats()["live_answer_rate"] <= 1.0


def test_refused_events_raise_value_errors_and_change_nothing() -> None:
    eng = PacingEngine()
    team(eng, 3)
    eng.call_dialed("c1", 1.0)
    before = eng.stats()
    with pytest.raises(dialer_core.UnknownCall, match="'nope'|\"nope\""):
        eng.call_answered("nope", 2.0)
    with pytest.raises(dialer_core.OutOfOrderEvent, match="ringing"):
        eng.call_connected("c1", 2.0)
    with pytest.raises(dialer_core.OutOfOrderEvent, match="earlier"):
        eng.call_answered("c1", 0.5)
    with pytest.raises(dialer_core.OutOfOrderEvent, match="dialled once"):
        eng.call_dialed("c1", 2.0)
    with pytest.raises(ValueError, match="reason"):
        eng.call_unanswered("c1", 2.0, "voicemail")
    with pytest.raises(ValueError, match="agent state"):
        eng.agent_state("a1", "lunch", 2.0)
    with pytest.raises(ValueError, match="finite"):
        eng.decide(float("nan"))
    assert eng.stats() == before
    # Every refusal is a ValueError: callers can catch that.
    assert issubclass(dialer_core.PacingEventError, ValueError)


def test_configure_validates_everything_before_applying_anything() -> None:
    eng = PacingEngine(max_dial_ratio=2.0)
    with pytest.raises(ValueError, match="target_abandon_rate"):
        eng.configure(max_dial_ratio=2.5, target_abandon_rate=0.9)
    assert eng.config()["max_dial_ratio"] == 2.0
    with pytest.raises(ValueError, match="setting"):
        eng.configure(max_ratio=2.5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="ivr"):
        eng.configure(mode="ivr")
    eng.configure(mode="ivr", max_channels=10, max_cps=2.0)
    assert eng.config() == {
        "mode": "ivr",
        "target_abandon_rate": 0.03,
        "abandon_window_s": 86400.0,
        "connect_limit_s": 2.0,
        "max_dial_ratio": 2.0,
        "max_channels": 10,
        "max_cps": 2.0,
    }
    assert eng.decide(0.0) == 2, "the CPS bucket holds 2 calls"


def test_channel_cap_applies_live() -> None:
    eng = PacingEngine(mode="progressive")
    team(eng, 10)
    eng.configure(max_channels=4)
    assert eng.decide(0.0) == 4


def test_simulate_is_reproducible_and_predictive_beats_progressive() -> None:
    day = dict(agents=40, live_rate=0.2, talk_mean_s=90.0, duration_s=3600.0, seed=3)
    a = dialer_core.simulate("predictive", **day)  # type: ignore[arg-type]
    assert a == dialer_core.simulate("predictive", **day)  # type: ignore[arg-type]
    prog = dialer_core.simulate("progressive", **day)  # type: ignore[arg-type]
    assert prog["abandons"] == 0
    assert a["worst_window_abandon_rate"] <= 0.03
    assert a["occupancy"] > prog["occupancy"] + 0.1
    assert len(a["series"]["t"]) == 60


def test_simulate_rejects_unknown_policy_and_parameters() -> None:
    with pytest.raises(ValueError, match="policy"):
        dialer_core.simulate("magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="agentz"):
        dialer_core.simulate("predictive", agentz=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="shares"):
        dialer_core.simulate("predictive", live_rate=0.9)

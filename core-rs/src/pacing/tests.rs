//! Property tests: any sequence of events, valid or not, in any mode and with any caps.
//! - `decide` never exceeds `max_dial_ratio`, `max_channels` or `max_cps`;
//! - in progressive, preview and manual modes it never asks for more lines than idle agents;
//! - a refused event leaves the engine exactly as it was, and nothing panics.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Agent(u8, u8),
    Dial(u8),
    Answer(u8),
    Connect(u8),
    Abandon(u8),
    Unanswered(u8, u8),
    End(u8),
    /// Decide, then dial what it said (fresh ids).
    Decide,
    Tune(f64, Option<u32>, Option<f64>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..8, 0u8..5).prop_map(|(a, s)| Op::Agent(a, s)),
        2 => (0u8..40).prop_map(Op::Dial),
        3 => (0u8..40).prop_map(Op::Answer),
        2 => (0u8..40).prop_map(Op::Connect),
        1 => (0u8..40).prop_map(Op::Abandon),
        3 => (0u8..40, 0u8..4).prop_map(|(c, r)| Op::Unanswered(c, r)),
        2 => (0u8..40).prop_map(Op::End),
        4 => Just(Op::Decide),
        1 => (1.0f64..5.0, proptest::option::of(1u32..30), proptest::option::of(0.5f64..20.0))
            .prop_map(|(r, ch, cps)| Op::Tune(r, ch, cps)),
    ]
}

fn config(mode: u8, ratio: f64, channels: Option<u32>, cps: Option<f64>) -> Config {
    let mode = [
        Mode::Manual,
        Mode::Preview,
        Mode::Progressive,
        Mode::Predictive,
        Mode::Ivr,
    ][mode as usize % 5];
    let channels = if mode == Mode::Ivr {
        Some(channels.unwrap_or(10))
    } else {
        channels
    };
    Config {
        mode,
        max_dial_ratio: ratio,
        max_channels: channels,
        max_cps: cps,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn decide_respects_caps_and_refused_events_change_nothing(
        mode in 0u8..5,
        ratio in 1.0f64..4.0,
        channels in proptest::option::of(1u32..30),
        cps in proptest::option::of(0.5f64..20.0),
        ops in proptest::collection::vec((op(), -0.5f64..3.0), 1..300),
    ) {
        let mut e = PacingEngine::<String>::new(config(mode, ratio, channels, cps)).unwrap();
        let mut now = 0.0;
        let mut next_id = 1000u32;
        for (op, dt) in ops {
            now += dt; // sometimes backwards: must be refused
            let before = format!("{e:?}");
            let id = |c: &u8| format!("c{c}");
            let r = match &op {
                Op::Agent(a, s) => e.agent_state(&format!("a{a}"), AgentState::parse(AgentState::NAMES[*s as usize]).unwrap(), now),
                Op::Dial(c) => e.call_dialed(id(c).as_str(), now),
                Op::Answer(c) => e.call_answered(id(c).as_str(), now),
                Op::Connect(c) => e.call_connected(id(c).as_str(), now),
                Op::Abandon(c) => e.call_abandoned(id(c).as_str(), now),
                Op::Unanswered(c, r) => e.call_unanswered(id(c).as_str(), Unanswered::parse(Unanswered::NAMES[*r as usize]).unwrap(), now),
                Op::End(c) => e.call_ended(id(c).as_str(), now),
                Op::Tune(r, ch, cps) => {
                    let mut c = e.config().clone();
                    c.max_dial_ratio = *r;
                    c.max_channels = if c.mode == Mode::Ivr { Some(ch.unwrap_or(5)) } else { *ch };
                    c.max_cps = *cps;
                    e.configure(c)
                }
                Op::Decide => {
                    let s = e.stats();
                    let [ready, talking, wrap, _] = s.agents;
                    let active = s.calls_ringing + s.calls_waiting + s.calls_connected + s.calls_closing;
                    let cfg = e.config().clone();
                    match e.decide(now) {
                        Err(err) => Err(err),
                        Ok(n) => {
                            let staffed = if cfg.mode == Mode::Ivr { cfg.max_channels.unwrap() } else { ready + talking + wrap };
                            let ratio_cap = (cfg.max_dial_ratio * f64::from(staffed)).floor() as u32;
                            prop_assert!(n == 0 || s.calls_ringing + n <= ratio_cap, "ratio: {n} + {} > {ratio_cap}", s.calls_ringing);
                            if let Some(ch) = cfg.max_channels {
                                prop_assert!(n == 0 || active + n <= ch, "channels: {active} + {n} > {ch}");
                            }
                            if let Some(cps) = cfg.max_cps {
                                prop_assert!(f64::from(n) <= cps.max(1.0), "cps burst: {n} > {cps}");
                            }
                            if matches!(cfg.mode, Mode::Progressive | Mode::Preview | Mode::Manual) {
                                let idle = ready.saturating_sub(s.calls_ringing + s.calls_waiting);
                                prop_assert!(n <= idle, "{:?}: {n} lines for {idle} idle agents", cfg.mode);
                            }
                            for _ in 0..n {
                                next_id += 1;
                                e.call_dialed(format!("d{next_id}").as_str(), now).unwrap();
                            }
                            Ok(())
                        }
                    }
                }
            };
            e.check_invariants();
            if r.is_err() {
                prop_assert_eq!(before, format!("{e:?}"), "refused {:?} changed the engine", op);
                now = e.last.max(0.0);
            }
        }
    }
}

/// The cap over every window, on a fixed set of seeded days (deterministic: never flaky). The
/// scenario grid in `bench/` covers more.
#[test]
fn abandon_rate_stays_under_target_in_every_window() {
    use crate::sim::{simulate, PolicySpec, Scenario};
    for (i, (agents, live, talk, target)) in [
        (10, 0.3, 60.0, 0.03),
        (30, 0.15, 120.0, 0.03),
        (60, 0.25, 240.0, 0.01),
        (25, 0.4, 90.0, 0.03),
    ]
    .into_iter()
    .enumerate()
    {
        let sc = Scenario {
            agents,
            live_rate: live,
            talk_mean_s: talk,
            duration_s: 1800.0,
            seed: 100 + i as u64,
            ..Scenario::default()
        };
        let cfg = Config {
            target_abandon_rate: target,
            ..Config::default()
        };
        let r = simulate(&sc, &PolicySpec::Engine(cfg), 86_400.0).unwrap();
        assert!(
            r.worst_window_abandon_rate <= target,
            "{agents} agents, {live} live, {talk} s: {r:?}"
        );
        assert!(r.connects > 0);
    }
}

#[test]
fn cps_cap_holds_over_time() {
    let cfg = Config {
        mode: Mode::Ivr,
        max_channels: Some(1000),
        max_cps: Some(5.0),
        ..Config::default()
    };
    let mut e = PacingEngine::<u64>::new(cfg).unwrap();
    let mut dialed = 0u64;
    for step in 0..100 {
        let now = f64::from(step) * 0.1;
        for _ in 0..e.decide(now).unwrap() {
            e.call_dialed(&dialed, now).unwrap();
            dialed += 1;
        }
    }
    // 9.9 s at 5/s plus the initial bucket of 5.
    assert!((49..=55).contains(&dialed), "{dialed}");
}

#[test]
fn ivr_fills_its_ports_and_no_more() {
    let cfg = Config {
        mode: Mode::Ivr,
        max_channels: Some(30),
        ..Config::default()
    };
    let mut e = PacingEngine::<u64>::new(cfg).unwrap();
    assert_eq!(e.decide(0.0).unwrap(), 30);
    for c in 0..30 {
        e.call_dialed(&c, 0.0).unwrap();
    }
    assert_eq!(e.decide(1.0).unwrap(), 0);
    e.call_unanswered(&3, Unanswered::Busy, 2.0).unwrap();
    e.call_answered(&4, 2.0).unwrap();
    e.call_connected(&4, 2.0).unwrap();
    assert_eq!(
        e.decide(2.0).unwrap(),
        1,
        "one port freed, the answered call keeps its port"
    );
}

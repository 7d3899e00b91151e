//! A discrete-event call-centre simulator (seeded, reproducible) and the baseline policies.
//!
//! A day: every agent logs in at `t = 0` (the engine knows nothing yet); the policy decides every
//! `tick_s`; each call placed draws its outcome (live answer, answering machine, busy, failure,
//! no answer at the ring timeout) and when it comes. A live answer takes the agent who has been
//! ready longest; with none ready it waits, and is abandoned if no agent frees up within the
//! connect limit. Agents talk and wrap for lognormal times, then take the oldest waiting call or
//! become ready. The live-answer rate may drift linearly over the day.
//!
//! The figures: occupancy (talk + wrap over logged-in time), the abandon rate over the day and the
//! worst one over every window of `abandon_window_s` ending at any abandon (so from the first
//! minute on), and a per-minute series for plots.

pub mod policies;
pub mod rng;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::error::{Error, Result};
use crate::pacing::{AgentState, Config, Mode, PacingEngine, Unanswered};
use policies::{DropAction, ErlangB, FixedRatio, Policy, Vicidial};
use rng::Rng;

const DAY_S: f64 = 86_400.0;
/// After the calling hours, agents stay this long for the calls still ringing, then log off.
const DRAIN_S: f64 = 60.0;

/// One simulated day (or several, 24 h apart).
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub agents: u32,
    /// Share of calls a person answers (at the start of the day).
    pub live_rate: f64,
    /// The live-answer rate at the end of the day, as a multiple of `live_rate` (1 = no drift).
    pub drift: f64,
    pub machine_rate: f64,
    pub busy_rate: f64,
    pub fail_rate: f64,
    pub answer_delay_median_s: f64,
    pub answer_delay_sigma: f64,
    pub ring_timeout_s: f64,
    pub talk_mean_s: f64,
    pub talk_cv: f64,
    pub wrap_mean_s: f64,
    pub wrap_cv: f64,
    pub connect_limit_s: f64,
    /// Calling hours a day (all agents log in at their start, off at their end).
    pub duration_s: f64,
    /// Days simulated, 24 h apart: windows then slide across days and nights.
    pub days: u32,
    pub tick_s: f64,
    pub series_step_s: f64,
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            agents: 100,
            live_rate: 0.25,
            drift: 1.0,
            machine_rate: 0.10,
            busy_rate: 0.10,
            fail_rate: 0.10,
            answer_delay_median_s: 8.0,
            answer_delay_sigma: 0.5,
            ring_timeout_s: 25.0,
            talk_mean_s: 120.0,
            talk_cv: 0.8,
            wrap_mean_s: 10.0,
            wrap_cv: 0.5,
            connect_limit_s: 2.0,
            duration_s: 8.0 * 3600.0,
            days: 1,
            tick_s: 0.5,
            series_step_s: 60.0,
            seed: 1,
        }
    }
}

impl Scenario {
    pub fn validate(&self) -> Result<()> {
        let shares = self.live_rate.max(self.live_rate * self.drift)
            + self.machine_rate
            + self.busy_rate
            + self.fail_rate;
        if self.agents == 0 || self.agents > 100_000 {
            return Err(Error::invalid(
                "agents",
                format!("{}: expected 1 to 100000", self.agents),
            ));
        }
        for (what, v) in [
            ("live_rate", self.live_rate),
            ("machine_rate", self.machine_rate),
            ("busy_rate", self.busy_rate),
            ("fail_rate", self.fail_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(
                    what,
                    format!("{v}: expected a share in [0, 1]"),
                ));
            }
        }
        if shares.is_nan() || shares > 1.0 + 1e-9 {
            return Err(Error::invalid(
                "live_rate",
                format!("outcome shares add up to {shares:.3} > 1"),
            ));
        }
        for (what, v) in [
            ("drift", self.drift),
            ("answer_delay_median_s", self.answer_delay_median_s),
            ("answer_delay_sigma", self.answer_delay_sigma),
            ("ring_timeout_s", self.ring_timeout_s),
            ("talk_mean_s", self.talk_mean_s),
            ("talk_cv", self.talk_cv),
            ("wrap_mean_s", self.wrap_mean_s),
            ("wrap_cv", self.wrap_cv),
            ("connect_limit_s", self.connect_limit_s),
            ("duration_s", self.duration_s),
            ("tick_s", self.tick_s),
            ("series_step_s", self.series_step_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(
                    what,
                    format!("{v}: expected a positive number"),
                ));
            }
        }
        if !(1..=60).contains(&self.days) {
            return Err(Error::invalid(
                "days",
                format!("{}: expected 1 to 60", self.days),
            ));
        }
        if self.days > 1 && self.duration_s > DAY_S - 2.0 * DRAIN_S {
            return Err(Error::invalid(
                "duration_s",
                "over several days, calling hours must leave a night (under 23.9 h)",
            ));
        }
        if f64::from(self.days) * self.duration_s / self.tick_s > 1e8 {
            return Err(Error::invalid(
                "tick_s",
                "too small for the duration (over 1e8 ticks)",
            ));
        }
        Ok(())
    }

    fn live_rate_at(&self, t: f64) -> f64 {
        let in_day = t.rem_euclid(DAY_S);
        self.live_rate * (1.0 + (self.drift - 1.0) * (in_day / self.duration_s).clamp(0.0, 1.0))
    }

    /// When the simulation stops: the end of the calling hours (one day), or the last day's
    /// drain after them.
    fn end(&self) -> f64 {
        if self.days == 1 {
            self.duration_s
        } else {
            f64::from(self.days - 1) * DAY_S + self.duration_s + DRAIN_S
        }
    }
}

/// A policy to simulate, by name.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySpec {
    /// Our engine, in any mode, with its settings.
    Engine(Config),
    FixedRatio(f64),
    Vicidial {
        action: DropAction,
        target: f64,
    },
    ErlangB {
        target: f64,
    },
}

impl PolicySpec {
    pub fn name(&self) -> String {
        match self {
            PolicySpec::Engine(c) => c.mode.as_str().to_string(),
            PolicySpec::FixedRatio(_) => "fixed_ratio".into(),
            PolicySpec::Vicidial {
                action: DropAction::HardLimit,
                ..
            } => "vicidial_hard_limit".into(),
            PolicySpec::Vicidial {
                action: DropAction::Average,
                ..
            } => "vicidial_average".into(),
            PolicySpec::ErlangB { .. } => "erlang_b".into(),
        }
    }

    fn build(&self, sc: &Scenario) -> Result<Box<dyn Policy>> {
        Ok(match self {
            PolicySpec::Engine(cfg) => {
                if cfg.mode == Mode::Ivr {
                    return Err(Error::invalid(
                        "policy",
                        "the simulator has agents; simulate ivr campaigns as predictive",
                    ));
                }
                Box::new(PacingEngine::<u64>::new(cfg.clone())?)
            }
            PolicySpec::FixedRatio(r) => Box::new(FixedRatio::new(*r)),
            PolicySpec::Vicidial { action, target } => Box::new(Vicidial::new(*action, *target)),
            PolicySpec::ErlangB { target } => {
                let handle = sc.talk_mean_s + sc.wrap_mean_s;
                Box::new(ErlangB::new(
                    sc.agents,
                    sc.live_rate,
                    handle,
                    *target,
                    sc.seed,
                ))
            }
        })
    }
}

/// Per-minute figures (one point per `series_step_s`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub t: Vec<f64>,
    pub occupancy: Vec<f64>,
    /// Abandon rate over the window ending at the end of the step.
    pub window_abandon_rate: Vec<f64>,
    pub dialed: Vec<u64>,
    pub answers: Vec<u64>,
    pub abandons: Vec<u64>,
}

/// What a simulated day gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub policy: String,
    pub dialed: u64,
    pub live_answers: u64,
    pub abandons: u64,
    pub connects: u64,
    pub abandon_rate: f64,
    /// The highest abandon rate over any window of `abandon_window_s` ending at an abandon.
    pub worst_window_abandon_rate: f64,
    pub occupancy: f64,
    pub decisions: u64,
    pub series: Series,
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Live,
    Machine,
    Busy,
    Failed,
    NoAnswer,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Tick,
    Resolve(u64, Outcome),
    AbandonCheck(u64),
    TalkEnd(u32, u64),
    WrapEnd(u32),
    /// The calling hours end: no more dialling.
    DayEnd,
    /// The drain is over: ready agents log off, busy ones when their wrap-up ends.
    AgentsOff,
    DayStart,
}

struct Timed(f64, u64, Ev);

impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    /// Reversed: `BinaryHeap` pops the earliest; ties in scheduling order.
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
    }
}

struct Sim<'a> {
    sc: &'a Scenario,
    /// Call outcomes, and agents' talk and wrap times, draw from their own streams: the i-th call
    /// dialled and the k-th call connected are the same under every policy.
    calls_rng: Rng,
    agents_rng: Rng,
    open: bool,
    off_duty: bool,
    heap: BinaryHeap<Timed>,
    seq: u64,
    ready: VecDeque<u32>,
    busy_since: Vec<f64>,
    waiting: VecDeque<(u64, f64)>,
    is_waiting: Vec<bool>,
    busy_time: f64,
    busy_now: u32,
    answer_times: Vec<f64>,
    abandon_times: Vec<f64>,
    dial_times: Vec<f64>,
    connects: u64,
    decisions: u64,
    occupancy_acc: Vec<f64>,
}

impl Sim<'_> {
    fn at(&mut self, t: f64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Timed(t, self.seq, ev));
    }

    fn dial(&mut self, call: u64, now: f64) {
        let sc = self.sc;
        let live = sc.live_rate_at(now);
        let u = self.calls_rng.uniform();
        let (outcome, delay) = if u < live {
            let d = self
                .calls_rng
                .lognormal_median(sc.answer_delay_median_s, sc.answer_delay_sigma);
            if d > sc.ring_timeout_s {
                (Outcome::NoAnswer, sc.ring_timeout_s)
            } else {
                (Outcome::Live, d)
            }
        } else if u < live + sc.machine_rate {
            let d = self
                .calls_rng
                .lognormal_median(sc.answer_delay_median_s, sc.answer_delay_sigma)
                .min(sc.ring_timeout_s);
            (Outcome::Machine, d + 3.0)
        } else if u < live + sc.machine_rate + sc.busy_rate {
            (Outcome::Busy, 0.5 + 2.5 * self.calls_rng.uniform())
        } else if u < live + sc.machine_rate + sc.busy_rate + sc.fail_rate {
            (
                Outcome::Failed,
                self.calls_rng.lognormal_median(1.5, 0.8).min(30.0),
            )
        } else {
            (Outcome::NoAnswer, sc.ring_timeout_s)
        };
        self.at(now + delay, Ev::Resolve(call, outcome));
    }

    fn start_talk(&mut self, p: &mut dyn Policy, agent: u32, call: u64, now: f64) -> Result<()> {
        p.call_connected(call, now)?;
        p.agent_state(u64::from(agent), AgentState::Talking, now)?;
        self.connects += 1;
        self.busy_since[agent as usize] = now;
        self.busy_now += 1;
        let talk = self
            .agents_rng
            .lognormal_mean(self.sc.talk_mean_s, self.sc.talk_cv);
        self.at(now + talk, Ev::TalkEnd(agent, call));
        Ok(())
    }
}

/// Simulate one day of `scenario` under `policy`.
pub fn simulate(scenario: &Scenario, policy: &PolicySpec, abandon_window_s: f64) -> Result<Report> {
    scenario.validate()?;
    let sc = scenario;
    let mut p = policy.build(sc)?;
    let end = sc.end();
    let steps = (end / sc.series_step_s).ceil() as usize;
    let mut s = Sim {
        sc,
        calls_rng: Rng::new(sc.seed),
        agents_rng: Rng::new(sc.seed ^ 0x5EED_A6E7),
        open: true,
        off_duty: false,
        heap: BinaryHeap::new(),
        seq: 0,
        ready: (0..sc.agents).collect(),
        busy_since: vec![0.0; sc.agents as usize],
        waiting: VecDeque::new(),
        is_waiting: Vec::new(),
        busy_time: 0.0,
        busy_now: 0,
        answer_times: Vec::new(),
        abandon_times: Vec::new(),
        dial_times: Vec::new(),
        connects: 0,
        decisions: 0,
        occupancy_acc: vec![0.0; steps],
    };
    for a in 0..sc.agents {
        p.agent_state(u64::from(a), AgentState::Ready, 0.0)?;
    }
    s.at(0.0, Ev::Tick);
    for d in 0..sc.days {
        let start = f64::from(d) * DAY_S;
        if d > 0 {
            s.at(start, Ev::DayStart);
        }
        if sc.days > 1 {
            s.at(start + sc.duration_s, Ev::DayEnd);
            s.at(start + sc.duration_s + DRAIN_S, Ev::AgentsOff);
        }
    }
    let mut next_call: u64 = 0;
    while let Some(Timed(now, _, ev)) = s.heap.pop() {
        if now >= end {
            break;
        }
        match ev {
            Ev::DayEnd => s.open = false,
            Ev::AgentsOff => {
                s.off_duty = true;
                while let Some(agent) = s.ready.pop_front() {
                    p.agent_state(u64::from(agent), AgentState::Offline, now)?;
                }
            }
            Ev::DayStart => {
                s.off_duty = false;
                s.open = true;
                for a in 0..sc.agents {
                    p.agent_state(u64::from(a), AgentState::Ready, now)?;
                    s.ready.push_back(a);
                }
                s.at(now, Ev::Tick);
            }
            Ev::Tick if !s.open => {}
            Ev::Tick => {
                let n = p.decide(now)?;
                s.decisions += 1;
                for _ in 0..n {
                    let call = next_call;
                    next_call += 1;
                    p.call_dialed(call, now)?;
                    s.dial_times.push(now);
                    s.dial(call, now);
                }
                let step = ((now / sc.series_step_s) as usize).min(steps - 1);
                s.occupancy_acc[step] += f64::from(s.busy_now) * sc.tick_s;
                s.at(now + sc.tick_s, Ev::Tick);
            }
            Ev::Resolve(call, outcome) => {
                let reason = match outcome {
                    Outcome::Live => {
                        p.call_answered(call, now)?;
                        s.answer_times.push(now);
                        if let Some(agent) = s.ready.pop_front() {
                            s.start_talk(p.as_mut(), agent, call, now)?;
                        } else {
                            let i = call as usize;
                            if s.is_waiting.len() <= i {
                                s.is_waiting.resize(i + 1, false);
                            }
                            s.is_waiting[i] = true;
                            s.waiting.push_back((call, now));
                            s.at(now + sc.connect_limit_s, Ev::AbandonCheck(call));
                        }
                        continue;
                    }
                    Outcome::Machine => Unanswered::Machine,
                    Outcome::Busy => Unanswered::Busy,
                    Outcome::Failed => Unanswered::Failed,
                    Outcome::NoAnswer => Unanswered::NoAnswer,
                };
                p.call_unanswered(call, reason, now)?;
            }
            Ev::AbandonCheck(call) => {
                if s.is_waiting.get(call as usize).copied().unwrap_or(false) {
                    s.is_waiting[call as usize] = false;
                    s.waiting.retain(|w| w.0 != call);
                    p.call_abandoned(call, now)?;
                    p.call_ended(call, now)?;
                    s.abandon_times.push(now);
                }
            }
            Ev::TalkEnd(agent, call) => {
                p.call_ended(call, now)?;
                p.agent_state(u64::from(agent), AgentState::Wrap, now)?;
                let wrap = s.agents_rng.lognormal_mean(sc.wrap_mean_s, sc.wrap_cv);
                s.at(now + wrap, Ev::WrapEnd(agent));
            }
            Ev::WrapEnd(agent) => {
                s.busy_time += now - s.busy_since[agent as usize];
                s.busy_now -= 1;
                if s.off_duty {
                    p.agent_state(u64::from(agent), AgentState::Offline, now)?;
                    continue;
                }
                p.agent_state(u64::from(agent), AgentState::Ready, now)?;
                if let Some((call, _)) = s.waiting.pop_front() {
                    s.is_waiting[call as usize] = false;
                    s.start_talk(p.as_mut(), agent, call, now)?;
                } else {
                    s.ready.push_back(agent);
                }
            }
        }
    }
    // Agents still busy at the end of the day.
    let mut busy_time = s.busy_time;
    if !s.off_duty {
        let ready: std::collections::HashSet<u32> = s.ready.iter().copied().collect();
        for a in 0..sc.agents {
            if !ready.contains(&a) {
                busy_time += end - s.busy_since[a as usize];
            }
        }
    }
    let live = s.answer_times.len() as u64;
    let abandons = s.abandon_times.len() as u64;
    let worst = worst_window_rate(&s.answer_times, &s.abandon_times, abandon_window_s);
    let series = build_series(&s, steps, abandon_window_s);
    Ok(Report {
        policy: policy.name(),
        dialed: next_call,
        live_answers: live,
        abandons,
        connects: s.connects,
        abandon_rate: if live == 0 {
            0.0
        } else {
            abandons as f64 / live as f64
        },
        worst_window_abandon_rate: worst,
        occupancy: busy_time / (f64::from(sc.agents) * sc.duration_s * f64::from(sc.days)),
        decisions: s.decisions,
        series,
    })
}

/// Highest `abandons / live answers` over windows `(t - w, t]` ending at each abandon.
pub fn worst_window_rate(answers: &[f64], abandons: &[f64], w: f64) -> f64 {
    let (mut a_lo, mut a_hi, mut x_lo) = (0, 0, 0);
    let mut worst: f64 = 0.0;
    for (i, &t) in abandons.iter().enumerate() {
        while a_hi < answers.len() && answers[a_hi] <= t {
            a_hi += 1;
        }
        while a_lo < a_hi && answers[a_lo] <= t - w {
            a_lo += 1;
        }
        while x_lo < i && abandons[x_lo] <= t - w {
            x_lo += 1;
        }
        let live = (a_hi - a_lo).max(1) as f64;
        worst = worst.max((i + 1 - x_lo) as f64 / live);
    }
    worst
}

fn build_series(s: &Sim<'_>, steps: usize, w: f64) -> Series {
    let sc = s.sc;
    let mut out = Series::default();
    let count = |times: &[f64], lo: f64, hi: f64| -> u64 {
        (times.partition_point(|x| *x < hi) - times.partition_point(|x| *x < lo)) as u64
    };
    for k in 0..steps {
        let (lo, hi) = (
            k as f64 * sc.series_step_s,
            ((k + 1) as f64 * sc.series_step_s).min(sc.end()),
        );
        out.t.push(hi);
        out.occupancy
            .push(s.occupancy_acc[k] / (f64::from(sc.agents) * (hi - lo)).max(1e-9));
        let (wa, wx) = (
            count(&s.answer_times, hi - w, hi),
            count(&s.abandon_times, hi - w, hi),
        );
        out.window_abandon_rate
            .push(if wa == 0 { 0.0 } else { wx as f64 / wa as f64 });
        out.dialed.push(count(&s.dial_times, lo, hi));
        out.answers.push(count(&s.answer_times, lo, hi));
        out.abandons.push(count(&s.abandon_times, lo, hi));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(agents: u32, seed: u64) -> Scenario {
        Scenario {
            agents,
            duration_s: 3600.0,
            seed,
            ..Scenario::default()
        }
    }

    #[test]
    fn same_seed_same_day() {
        let spec = PolicySpec::Engine(Config::default());
        let a = simulate(&short(20, 3), &spec, 86_400.0).unwrap();
        let b = simulate(&short(20, 3), &spec, 86_400.0).unwrap();
        assert_eq!(a, b);
        assert!(a.connects > 100, "{a:?}");
    }

    #[test]
    fn progressive_never_abandons() {
        let spec = PolicySpec::Engine(Config {
            mode: Mode::Progressive,
            ..Config::default()
        });
        let r = simulate(&short(30, 5), &spec, 86_400.0).unwrap();
        assert_eq!(r.abandons, 0);
        assert!(r.occupancy > 0.2, "{}", r.occupancy);
    }

    #[test]
    fn predictive_beats_progressive_within_the_cap() {
        let sc = short(50, 11);
        let pred = simulate(&sc, &PolicySpec::Engine(Config::default()), 86_400.0).unwrap();
        let prog = simulate(
            &sc,
            &PolicySpec::Engine(Config {
                mode: Mode::Progressive,
                ..Config::default()
            }),
            86_400.0,
        )
        .unwrap();
        assert!(pred.worst_window_abandon_rate <= 0.03, "{pred:?}");
        assert!(
            pred.occupancy > prog.occupancy + 0.05,
            "{} vs {}",
            pred.occupancy,
            prog.occupancy
        );
    }

    #[test]
    fn several_days_slide_the_window_across_nights() {
        // A 1-hour calling day, 3 days, a 24 h window: yesterday's answers leave the window
        // during today's calls; the engine must not spend abandons they were paying for.
        let sc = Scenario {
            agents: 30,
            live_rate: 0.25,
            talk_mean_s: 90.0,
            duration_s: 3600.0,
            days: 3,
            seed: 9,
            ..Scenario::default()
        };
        let r = simulate(&sc, &PolicySpec::Engine(Config::default()), 86_400.0).unwrap();
        assert!(
            r.worst_window_abandon_rate <= 0.03,
            "{}",
            r.worst_window_abandon_rate
        );
        assert_eq!(
            r.series.t.len(),
            2 * 1440 + 61,
            "minutes to the end of the last day's drain"
        );
        let day = |d: usize| {
            r.series.answers[d * 1440..d * 1440 + 60]
                .iter()
                .sum::<u64>()
        };
        assert!(
            day(0) > 100 && day(1) > 100 && day(2) > 100,
            "calls every day: {} {} {}",
            day(0),
            day(1),
            day(2)
        );
        let nights: u64 = r.series.dialed[70..1440].iter().sum();
        assert_eq!(nights, 0, "nothing dialled at night");
    }

    #[test]
    fn worst_window_counts_each_window() {
        // 10 answers at t = 0..9 and an abandon at 5: 1 abandon over the 6 answers up to 5.
        let answers: Vec<f64> = (0..10).map(f64::from).collect();
        assert!((worst_window_rate(&answers, &[5.0], 50.0) - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(worst_window_rate(&answers, &[], 50.0), 0.0);
    }
}

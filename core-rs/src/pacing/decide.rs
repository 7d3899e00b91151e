//! The decision: how many calls to place now.
//!
//! 1. **Caps** bound everything: ringing lines `<= max_dial_ratio * staffed agents`, calls in
//!    progress `<= max_channels`, new calls `<= max_cps` (token bucket).
//! 2. **The progressive floor**: one line per ready agent not already covered by a ringing or
//!    waiting call. It cannot abandon, so predictive never dials fewer.
//! 3. **The predictive search** (mode `predictive`) looks at `H` horizons `h` (quantiles of the
//!    time from dial to live answer). Agents free by `h + connect_limit` are the supply: the ready
//!    ones, plus each agent in wrap-up with the chance it ends by then given how long it has
//!    lasted, plus each talking agent with the chance the rest of its talk and a whole wrap-up end
//!    by then given how long it has talked. Live answers by `h` are the demand: the waiting calls, plus each ringing call
//!    with the chance a person answers it in the next `h` seconds given how long it has rung, plus
//!    `p * F(h)` for each new call. Both are sums of independent Bernoullis; the engine takes the
//!    largest `n` with `E[demand - supply] + z * sd[demand - supply] <= 0` at every horizon: it
//!    keeps `z` standard deviations of agents spare.
//! 4. **The abandon controller** sets `z` by feedback: every abandon raises it by `Z_STEP`, every
//!    live answer while the predictive search is in effect lowers it by `Z_STEP * aim`, so the
//!    abandons settle at `aim` of the answers whatever the model's bias.
//! 5. **The budget** keeps the cap over every window: `B = target * answers - abandons` over the
//!    regulatory window (looking `BUDGET_LOOKAHEAD_S` ahead at answers about to leave it). The
//!    `aim` is the target while `B` is comfortably above a reserve, falls to 0 as `B` reaches it,
//!    and at the reserve the engine is exactly progressive. So a young campaign (no budget yet)
//!    starts progressive and goes predictive as answers earn it abandons.

use std::fmt::Display;
use std::hash::Hash;

use super::engine::{PacingEngine, Phase};
use super::estimate::{completion_table, ring_tables, talk_table, Curves, Table};
use super::{AgentState, Mode};
use crate::error::Result;

/// Seconds of window slide the budget looks ahead at.
pub const BUDGET_LOOKAHEAD_S: f64 = 300.0;
/// Live answers' worth of budget above the reserve at which `aim` reaches the target.
pub const BUDGET_SCALE_ANSWERS: f64 = 30.0;
/// Abandons always kept in reserve: a fixed few, plus a share of the window's whole budget.
pub const RESERVE_ABANDONS: f64 = 3.0;
pub const RESERVE_SHARE: f64 = 0.05;
/// The controller's safety margin `z` (standard deviations of spare agents): start, step, range.
pub const Z_START: f64 = 2.0;
pub const Z_STEP: f64 = 0.05;
pub const Z_MIN: f64 = -1.0;
pub const Z_MAX: f64 = 6.0;
/// Horizons looked at, as quantiles of the time from dial to live answer.
pub const H: usize = 3;
pub const HORIZON_QUANTILES: [f64; H] = [0.25, 0.5, 0.9];
/// Estimates refresh at most this often (seconds of `now`) while observations arrive.
pub const REFRESH_S: f64 = 2.0;
const RING_POINTS: usize = 256;
/// Horizons (seconds) before the first live answer is seen.
const HORIZON_PRIORS: [f64; H] = [5.0, 8.0, 15.0];
const AGENT_POINTS: usize = 128;
/// Quantiles of the wrap-up time a talking agent's table averages over.
const WRAP_POINTS: usize = 3;

/// What the estimators imply, rebuilt from the samples at most every `REFRESH_S`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Derived {
    pub stale: bool,
    pub built: bool,
    pub at: f64,
    /// Live-answer probability of a new call.
    pub p: f64,
    pub horizons: [f64; H],
    /// `F(h)`: share of live answers that come within each horizon.
    pub answer_by: [f64; H],
    pub ring_within: [Table; H],
    pub talk_free: [Table; H],
    pub wrap_free: [Table; H],
    curves: [Curves; 3],
    scratch: [Vec<f64>; 4],
}

/// The last decision and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub at: f64,
    pub calls: u32,
    /// The progressive floor (lines for ready agents not yet covered).
    pub floor: u32,
    /// The tightest cap.
    pub cap: u32,
    /// Abandon budget left (conservative).
    pub budget: f64,
    /// The abandon rate the controller aims at (0: progressive only).
    pub aim: f64,
    /// The controller's margin, in standard deviations of spare agents.
    pub z: f64,
}

/// The abandon controller's state (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub z: f64,
    pub aim: f64,
    /// The last decision placed more than the progressive floor.
    pub predicting: bool,
}

impl Default for Control {
    fn default() -> Self {
        Control { z: Z_START, aim: 0.0, predicting: false }
    }
}

impl Control {
    pub fn answered(&mut self) {
        if self.predicting {
            self.z = (self.z - Z_STEP * self.aim).max(Z_MIN);
        }
    }

    pub fn abandoned(&mut self) {
        self.z = (self.z + Z_STEP).min(Z_MAX);
    }
}

/// Everything the predictive search reads: the reference implementation in
/// `bench/pacing_reference.py` decides from exactly this.
#[derive(Debug, Clone)]
pub struct DecisionInputs {
    pub mode: Mode,
    pub ready: u32,
    pub waiting: u32,
    pub floor: u32,
    pub cap: u32,
    /// 0 when the predictive search is off (other modes, no budget): the decision is the floor.
    pub aim: f64,
    pub z: f64,
    pub p: f64,
    pub answer_by: [f64; H],
    pub ringing_ages: Vec<f64>,
    pub talking_elapsed: Vec<f64>,
    pub wrap_elapsed: Vec<f64>,
    pub ring_within: [Table; H],
    pub talk_free: [Table; H],
    pub wrap_free: [Table; H],
}

struct Prepared {
    floor: u32,
    cap: u32,
    aim: f64,
    budget: f64,
}

impl<K: Eq + Hash + Clone + Display> PacingEngine<K> {
    /// How many new calls to place now (>= 0).
    pub fn decide(&mut self, now: f64) -> Result<u32> {
        let pre = self.prepare(now)?;
        let calls = match self.cfg.mode {
            Mode::Predictive if pre.aim > 0.0 && pre.cap > pre.floor => self.search(&pre).max(pre.floor),
            _ => pre.floor,
        }
        .min(pre.cap);
        self.control.aim = pre.aim;
        self.control.predicting = calls > pre.floor;
        let z = self.control.z;
        self.last_decision = Decision { at: now, calls, floor: pre.floor, cap: pre.cap, budget: pre.budget, aim: pre.aim, z };
        Ok(calls)
    }

    /// The inputs `decide(now)` would read (it refreshes the estimates as `decide` would).
    pub fn decision_inputs(&mut self, now: f64) -> Result<DecisionInputs> {
        let pre = self.prepare(now)?;
        let elapsed = |state: AgentState| -> Vec<f64> {
            let a = self.agents.iter().filter(|a| a.state == state);
            a.map(|a| now - a.since).collect()
        };
        Ok(DecisionInputs {
            mode: self.cfg.mode,
            ready: self.agent_counts[0],
            waiting: self.call_counts[1],
            floor: pre.floor,
            cap: pre.cap,
            aim: if self.cfg.mode == Mode::Predictive { pre.aim } else { 0.0 },
            z: self.control.z,
            p: self.derived.p,
            answer_by: self.derived.answer_by,
            ringing_ages: self.calls.iter().filter(|c| c.phase == Phase::Ringing).map(|c| now - c.dialed).collect(),
            talking_elapsed: elapsed(AgentState::Talking),
            wrap_elapsed: elapsed(AgentState::Wrap),
            ring_within: self.derived.ring_within.clone(),
            talk_free: self.derived.talk_free.clone(),
            wrap_free: self.derived.wrap_free.clone(),
        })
    }

    fn prepare(&mut self, now: f64) -> Result<Prepared> {
        self.tick("decide", now)?;
        self.refill(now);
        self.refresh(now);
        let [ready, talking, wrap, ..] = self.agent_counts;
        let [ringing, waiting, connected, closing] = self.call_counts;
        let active = ringing + waiting + connected + closing;
        let ivr = self.cfg.mode == Mode::Ivr;
        let ports = self.cfg.max_channels.unwrap_or(0);
        let staffed = if ivr { ports } else { ready + talking + wrap };
        let mut cap = ((self.cfg.max_dial_ratio * f64::from(staffed)).floor() as u32).saturating_sub(ringing);
        if let Some(ch) = self.cfg.max_channels {
            cap = cap.min(ch.saturating_sub(active));
        }
        if self.cfg.max_cps.is_some() {
            cap = cap.min(self.tokens.max(0.0).floor() as u32);
        }
        let floor = if ivr { ports.saturating_sub(active) } else { ready.saturating_sub(waiting + ringing) };
        let target = self.cfg.target_abandon_rate;
        self.budget.expire(now);
        let budget = self.budget.conservative_budget(now, target, BUDGET_LOOKAHEAD_S);
        let (answers, _) = self.budget.counts();
        let reserve = RESERVE_ABANDONS + RESERVE_SHARE * target * answers as f64;
        let aim = if target > 0.0 {
            target * ((budget - reserve) / (target * BUDGET_SCALE_ANSWERS)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Ok(Prepared { floor, cap, aim, budget })
    }

    /// The largest `n <= cap` that keeps `z` standard deviations of agents spare at every
    /// horizon.
    fn search(&self, pre: &Prepared) -> u32 {
        let d = &self.derived;
        let now = self.last;
        let ready = f64::from(self.agent_counts[0]);
        let waiting = f64::from(self.call_counts[1]);
        // Mean and variance of demand - supply at every horizon, in one pass.
        let (mut mu, mut var) = ([waiting - ready; H], [0.0; H]);
        for a in &self.agents {
            let (tables, t) = match a.state {
                AgentState::Talking => (&d.talk_free, now - a.since),
                AgentState::Wrap => (&d.wrap_free, now - a.since),
                _ => continue,
            };
            for k in 0..H {
                let g = tables[k].at(t);
                mu[k] -= g;
                var[k] += g * (1.0 - g);
            }
        }
        for c in &self.calls {
            if c.phase != Phase::Ringing {
                continue;
            }
            let age = now - c.dialed;
            for k in 0..H {
                let q = d.ring_within[k].at(age);
                mu[k] += q;
                var[k] += q * (1.0 - q);
            }
        }
        let mut best = pre.cap;
        for k in 0..H {
            best = max_calls(mu[k], var[k], d.p * d.answer_by[k], self.control.z, best);
        }
        best
    }

    /// Rebuild the estimates when observations arrived and `REFRESH_S` passed (or settings
    /// changed).
    fn refresh(&mut self, now: f64) {
        let fresh = self.dials.fresh + self.talk.fresh + self.wrap.fresh;
        let d = &mut self.derived;
        if d.built && !d.stale && (fresh == 0 || now - d.at < REFRESH_S) {
            return;
        }
        let [dial_c, talk_c, wrap_c] = &mut d.curves;
        self.dials.curves(now, 2, dial_c);
        self.talk.curves(now, 1, talk_c);
        self.wrap.curves(now, 1, wrap_c);
        let p = (dial_c.last_cif(0) + dial_c.last_surv()).clamp(1e-3, 1.0);
        // Horizons: median and 90th percentile of the time to a live answer (priors until seen).
        let quantile = |q: f64, prior: f64| dial_c.time_to_cif(0, q * p).unwrap_or(dial_c.horizon.max(prior));
        d.horizons = std::array::from_fn(|k| quantile(HORIZON_QUANTILES[k], HORIZON_PRIORS[k]));
        let (p, answer_by) = ring_tables(dial_c, &d.horizons, RING_POINTS, &mut d.ring_within, &mut d.scratch);
        d.p = p;
        d.answer_by = answer_by;
        let limit = self.cfg.connect_limit_s;
        // A talking agent is free after the rest of the talk and a whole wrap-up: the wrap-up
        // is taken at these quantiles (unknown ones count as the longest seen: conservative).
        let wraps: [f64; WRAP_POINTS] =
            std::array::from_fn(|j| wrap_c.time_to_surv(1.0 - (j as f64 + 0.5) / WRAP_POINTS as f64).unwrap_or(wrap_c.horizon));
        for k in 0..H {
            let h = d.horizons[k] + limit;
            talk_table(talk_c, &wraps, h, AGENT_POINTS, &mut d.talk_free[k], &mut d.scratch);
            completion_table(wrap_c, h, AGENT_POINTS, &mut d.wrap_free[k], &mut d.scratch);
        }
        self.dials.fresh = 0;
        self.talk.fresh = 0;
        self.wrap.fresh = 0;
        d.stale = false;
        d.built = true;
        d.at = now;
    }
}

/// The largest `n` in `[0, cap]` with `mu0 + n * pn + z * sqrt(var0 + n * pn * (1 - pn)) <= 0`
/// (0 when even `n = 1` fails). The left side grows with `n`, so a binary search finds it.
pub fn max_calls(mu0: f64, var0: f64, pn: f64, z: f64, cap: u32) -> u32 {
    let ok = |n: u32| {
        let n = f64::from(n);
        mu0 + n * pn + z * (var0 + n * pn * (1.0 - pn)).max(0.0).sqrt() <= 0.0
    };
    if cap == 0 || !ok(1) {
        return 0;
    }
    let (mut lo, mut hi) = (1u32, cap); // ok(lo) holds
    if ok(hi) {
        return hi;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

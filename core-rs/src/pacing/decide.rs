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
//!    `p * F(h)` for each new call. Both are sums of independent Bernoullis, except that every
//!    call's chance scales with the estimate of `p`, whose error they share (its variance is
//!    added too). The engine takes the largest `n` with
//!    `E[demand - supply] + z * sd[demand - supply] <= 0` at every horizon: it keeps `z` standard
//!    deviations of agents spare.
//! 4. **The abandon controller** sets `z` by feedback: every abandon raises it by `Z_STEP`, every
//!    live answer while the predictive search is in effect (not held back by a cap) lowers it by
//!    `Z_STEP * aim`, so the abandons settle at `aim` of the answers whatever the model's bias.
//! 5. **The budget** keeps the cap over every window: `B = target * answers - abandons` over the
//!    regulatory window (looking `BUDGET_LOOKAHEAD_S` ahead at answers about to leave it). The
//!    `aim` is `AIM_SHARE * target` while `B` is `RAMP_ABANDONS` above a reserve (a few abandons,
//!    plus room for the largest burst of the last active hour, plus a share of the budget), falls to 0
//!    as `B` comes down to it (while the margin grows by up to `Z_RAMP`), and at the reserve the
//!    engine is exactly progressive. So a young
//!    campaign (no budget yet) starts progressive and goes predictive as answers earn it
//!    abandons. When a shift starts (staffed agents from none), `z` goes back to at least its
//!    starting value: the margin learned in steady state is no guide to everyone starting at once.

use std::fmt::Display;
use std::hash::Hash;

use super::engine::PacingEngine;
use super::estimate::{completion_table, ring_tables, talk_table, Curves, Packed, Table};
use super::slots::sum_bernoulli;
use super::Mode;
use crate::error::Result;

/// Seconds of window slide the budget looks ahead at.
pub const BUDGET_LOOKAHEAD_S: f64 = 300.0;
/// Abandons of budget above the reserve at which `aim` reaches `AIM_SHARE * target`.
pub const RAMP_ABANDONS: f64 = 3.0;
/// The controller aims this far under the target (the budget's margin for bad luck).
pub const AIM_SHARE: f64 = 0.85;
/// Abandons always kept in reserve: a fixed few, plus `BURST_RESERVE` times the most abandons
/// seen in one minute over the last active hour (abandons come in bursts), plus a share of the
/// window's whole budget.
pub const RESERVE_ABANDONS: f64 = 3.0;
pub const BURST_RESERVE: f64 = 1.5;
pub const RESERVE_SHARE: f64 = 0.05;
/// Active minutes (with answers or abandons) the burst reserve looks back over.
const BURST_MINUTES: usize = 60;
/// The controller's safety margin `z` (standard deviations of spare agents): start, step, range.
pub const Z_START: f64 = 2.5;
/// Extra margin while the budget is close to the reserve: `Z_RAMP * (1 - ramp)`.
pub const Z_RAMP: f64 = 2.0;
pub const Z_STEP: f64 = 0.05;
pub const Z_MIN: f64 = -1.0;
pub const Z_MAX: f64 = 6.0;
/// Horizons looked at, as quantiles of the time from dial to live answer.
pub const H: usize = 3;
pub const HORIZON_QUANTILES: [f64; H] = [0.25, 0.5, 0.9];
/// Estimates refresh at most this often (seconds of `now`) while observations arrive.
pub const REFRESH_S: f64 = 2.0;
const RING_POINTS: usize = 128;
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
    /// A refresh is under way: its next part.
    pub pending: Pending,
    /// Wrap-up quantiles (seconds) the talk tables average over.
    pub wraps: [f64; WRAP_POINTS],
    pub at: f64,
    /// Live-answer probability of a new call.
    pub p: f64,
    /// Relative variance of `p`'s estimate: `(1 - p) / (p * resolved calls)`.
    pub p_rel_var: f64,
    pub horizons: [f64; H],
    /// `F(h)`: share of live answers that come within each horizon.
    pub answer_by: [f64; H],
    pub ring_within: [Table; H],
    pub talk_free: [Table; H],
    pub wrap_free: [Table; H],
    /// The same tables packed for the per-decision lookups.
    packed: [Packed<H>; 3],
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
    /// The last decision was the predictive search's (not held by a cap, not progressive).
    pub predicting: bool,
    /// Abandons in each of the last `BURST_MINUTES` minutes that had live answers or abandons
    /// (minute index, count): a quiet night does not make the engine forget yesterday's bursts.
    burst: std::collections::VecDeque<(i64, u32)>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            z: Z_START,
            aim: 0.0,
            predicting: false,
            burst: std::collections::VecDeque::new(),
        }
    }
}

impl Control {
    pub fn answered(&mut self, now: f64) {
        if self.predicting {
            self.z = (self.z - Z_STEP * self.aim).max(Z_MIN);
        }
        self.minute(now);
    }

    pub fn abandoned(&mut self, now: f64) {
        self.z = (self.z + Z_STEP).min(Z_MAX);
        self.minute(now).1 += 1;
    }

    /// The slot of `now`'s minute (a new one when the minute changed).
    fn minute(&mut self, now: f64) -> &mut (i64, u32) {
        let minute = (now / 60.0).floor() as i64;
        if self.burst.back().is_none_or(|b| b.0 != minute) {
            if self.burst.len() == BURST_MINUTES {
                self.burst.pop_front();
            }
            self.burst.push_back((minute, 0));
        }
        let n = self.burst.len() - 1;
        &mut self.burst[n]
    }

    /// The most abandons in one of the last active minutes.
    pub fn largest_burst(&self) -> u32 {
        self.burst.iter().map(|b| b.1).max().unwrap_or(0)
    }

    /// A shift starts (staffed agents from none): the margin learned in steady state is no
    /// guide to everyone starting at once, so it goes back to at least its starting value.
    pub fn shift_starts(&mut self) {
        self.z = self.z.max(Z_START);
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
    pub p_rel_var: f64,
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
    /// The margin this decision uses: the controller's `z`, plus more near the reserve.
    z: f64,
}

impl<K: Eq + Hash + Clone + Display> PacingEngine<K> {
    /// How many new calls to place now (>= 0).
    pub fn decide(&mut self, now: f64) -> Result<u32> {
        let pre = self.prepare(now)?;
        let calls = match self.cfg.mode {
            Mode::Predictive if pre.aim > 0.0 && pre.cap > pre.floor => {
                self.search(&pre).max(pre.floor)
            }
            _ => pre.floor,
        }
        .min(pre.cap);
        self.control.aim = pre.aim;
        // Answers count toward the controller while its margin decides, not while a cap does.
        self.control.predicting =
            self.cfg.mode == Mode::Predictive && pre.aim > 0.0 && calls < pre.cap;
        let z = pre.z;
        self.last_decision = Decision {
            at: now,
            calls,
            floor: pre.floor,
            cap: pre.cap,
            budget: pre.budget,
            aim: pre.aim,
            z,
        };
        Ok(calls)
    }

    /// The inputs `decide(now)` would read (it refreshes the estimates as `decide` would).
    pub fn decision_inputs(&mut self, now: f64) -> Result<DecisionInputs> {
        let pre = self.prepare(now)?;
        Ok(DecisionInputs {
            mode: self.cfg.mode,
            ready: self.agent_counts[0],
            waiting: self.call_counts[1],
            floor: pre.floor,
            cap: pre.cap,
            aim: if self.cfg.mode == Mode::Predictive {
                pre.aim
            } else {
                0.0
            },
            z: pre.z,
            p: self.derived.p,
            p_rel_var: self.derived.p_rel_var,
            answer_by: self.derived.answer_by,
            ringing_ages: self.ringing.times.iter().map(|t| now - t).collect(),
            talking_elapsed: self.talking.times.iter().map(|t| now - t).collect(),
            wrap_elapsed: self.wrapping.times.iter().map(|t| now - t).collect(),
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
        let mut cap =
            ((self.cfg.max_dial_ratio * f64::from(staffed)).floor() as u32).saturating_sub(ringing);
        if let Some(ch) = self.cfg.max_channels {
            cap = cap.min(ch.saturating_sub(active));
        }
        if self.cfg.max_cps.is_some() {
            cap = cap.min(self.tokens.max(0.0).floor() as u32);
        }
        let floor = if ivr {
            ports.saturating_sub(active)
        } else {
            ready.saturating_sub(waiting + ringing)
        };
        let target = self.cfg.target_abandon_rate;
        self.budget.expire(now);
        let budget = self
            .budget
            .conservative_budget(now, target, BUDGET_LOOKAHEAD_S);
        let (answers, _) = self.budget.counts();
        let burst = f64::from(self.control.largest_burst());
        let reserve =
            RESERVE_ABANDONS + BURST_RESERVE * burst + RESERVE_SHARE * target * answers as f64;
        let ramp = ((budget - reserve) / RAMP_ABANDONS).clamp(0.0, 1.0);
        let aim = AIM_SHARE * target * ramp;
        let z = self.control.z + Z_RAMP * (1.0 - ramp);
        Ok(Prepared {
            floor,
            cap,
            aim,
            budget,
            z,
        })
    }

    /// The largest `n <= cap` that keeps `z` standard deviations of agents spare at every
    /// horizon.
    fn search(&self, pre: &Prepared) -> u32 {
        let d = &self.derived;
        let now = self.last;
        let ready = f64::from(self.agent_counts[0]);
        let waiting = f64::from(self.call_counts[1]);
        // Mean and variance of demand - supply at every horizon.
        let [ring, talk, wrap] = &d.packed;
        let (talk_free, talk_var) = sum_bernoulli(&self.talking.times, now, talk);
        let (wrap_free, wrap_var) = sum_bernoulli(&self.wrapping.times, now, wrap);
        let (ringing, ring_var) = sum_bernoulli(&self.ringing.times, now, ring);
        let mu: [f64; H] = std::array::from_fn(|k| waiting - ready - talk_free[k] - wrap_free[k]);
        let var: [f64; H] = std::array::from_fn(|k| talk_var[k] + wrap_var[k] + ring_var[k]);
        let mut best = pre.cap;
        for k in 0..H {
            let demand = Demand {
                ringing: ringing[k],
                per_call: d.p * d.answer_by[k],
                p_rel_var: d.p_rel_var,
            };
            best = max_calls(mu[k], var[k], &demand, pre.z, best);
        }
        best
    }

    /// Rebuild the estimates when observations arrived and `REFRESH_S` passed (or settings
    /// changed). The work is split in three parts done by consecutive decisions (the calls', the
    /// wrap-ups', the talks'), so no single `decide` pays for all of it; the first build and a
    /// settings change do all at once.
    fn refresh(&mut self, now: f64) {
        let d = &self.derived;
        if !d.built || d.stale {
            self.refresh_calls(now);
            self.refresh_wrap(now);
            self.refresh_talk(now);
            return;
        }
        match d.pending {
            Pending::Wrap => self.refresh_wrap(now),
            Pending::Talk => self.refresh_talk(now),
            Pending::Nothing => {
                let fresh = self.dials.fresh + self.talk.fresh + self.wrap.fresh;
                if fresh > 0 && now - d.at >= REFRESH_S {
                    self.refresh_calls(now);
                }
            }
        }
    }

    /// The dial cohort: live-answer rate, horizons, ring tables.
    fn refresh_calls(&mut self, now: f64) {
        let d = &mut self.derived;
        let dial_c = &mut d.curves[0];
        self.dials.curves(now, 2, dial_c);
        let p = (dial_c.last_cif(0) + dial_c.last_surv()).clamp(1e-3, 1.0);
        // Horizons: quantiles of the time to a live answer (priors until one is seen).
        let quantile = |q: f64, prior: f64| {
            dial_c
                .time_to_cif(0, q * p)
                .unwrap_or(dial_c.horizon.max(prior))
        };
        d.horizons = std::array::from_fn(|k| quantile(HORIZON_QUANTILES[k], HORIZON_PRIORS[k]));
        let (p, answer_by) = ring_tables(
            dial_c,
            &d.horizons,
            RING_POINTS,
            &mut d.ring_within,
            &mut d.scratch,
        );
        d.p = p;
        d.p_rel_var = (1.0 - p) / (p * (self.dials.finished() as f64).max(1.0));
        d.answer_by = answer_by;
        d.packed[0].pack(&d.ring_within);
        self.dials.fresh = 0;
        d.at = now;
        d.pending = Pending::Wrap;
    }

    /// Wrap-ups: the chance an agent in wrap-up is free within each horizon, and the wrap-up
    /// quantiles the talk tables use.
    fn refresh_wrap(&mut self, now: f64) {
        let d = &mut self.derived;
        let wrap_c = &mut d.curves[2];
        self.wrap.curves(now, 1, wrap_c);
        let limit = self.cfg.connect_limit_s;
        for k in 0..H {
            completion_table(
                wrap_c,
                d.horizons[k] + limit,
                AGENT_POINTS,
                &mut d.wrap_free[k],
                &mut d.scratch,
            );
        }
        // A talking agent is free after the rest of the talk and a whole wrap-up: the wrap-up
        // is taken at these quantiles (unknown ones count as the longest seen: conservative).
        d.wraps = std::array::from_fn(|j| {
            wrap_c
                .time_to_surv(1.0 - (j as f64 + 0.5) / WRAP_POINTS as f64)
                .unwrap_or(wrap_c.horizon)
        });
        d.packed[2].pack(&d.wrap_free);
        self.wrap.fresh = 0;
        d.pending = Pending::Talk;
    }

    /// Talks: the chance a talking agent is free within each horizon.
    fn refresh_talk(&mut self, now: f64) {
        let d = &mut self.derived;
        let talk_c = &mut d.curves[1];
        self.talk.curves(now, 1, talk_c);
        let limit = self.cfg.connect_limit_s;
        for k in 0..H {
            talk_table(
                talk_c,
                &d.wraps,
                d.horizons[k] + limit,
                AGENT_POINTS,
                &mut d.talk_free[k],
                &mut d.scratch,
            );
        }
        d.packed[1].pack(&d.talk_free);
        self.talk.fresh = 0;
        d.pending = Pending::Nothing;
        d.stale = false;
        d.built = true;
    }
}

/// Which part of a refresh the next decision does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Pending {
    #[default]
    Nothing,
    Wrap,
    Talk,
}

/// Expected live answers within a horizon: from the ringing calls, and per new call. All of them
/// scale with the estimated live-answer rate, whose error is shared: its relative variance
/// `p_rel_var` adds `(ringing + n * per_call)^2 * p_rel_var` to the variance.
#[derive(Debug, Clone, Copy)]
pub struct Demand {
    pub ringing: f64,
    pub per_call: f64,
    pub p_rel_var: f64,
}

/// The largest `n` in `[0, cap]` with `mu0 + demand(n) + z * sqrt(var(n)) <= 0`, where
/// `demand(n) = ringing + n * per_call` and `var(n) = var0 + n * per_call * (1 - per_call) +
/// demand(n)^2 * p_rel_var` (0 when even `n = 1` fails). `mu0` is the expected demand of the
/// waiting calls minus the expected supply; `var0` the variance of supply and of the ringing
/// calls. The left side grows with `n`, so a binary search finds it.
pub fn max_calls(mu0: f64, var0: f64, d: &Demand, z: f64, cap: u32) -> u32 {
    let ok = |n: u32| {
        let n = f64::from(n);
        let demand = d.ringing + n * d.per_call;
        let var = var0 + n * d.per_call * (1.0 - d.per_call) + demand * demand * d.p_rel_var;
        mu0 + demand + z * var.max(0.0).sqrt() <= 0.0
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

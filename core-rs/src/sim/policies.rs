//! Pacing policies the simulator can drive: our engine (any mode) and the baselines.
//!
//! - `FixedRatio`: every tick, `round(ratio * staffed agents) - lines in use`.
//! - `Vicidial`: VICIdial's adaptive methods as published: every 15 s
//!   `level *= 1 + (mean15(ready agents) - mean15(answered calls waiting)) / mean15(logged-in
//!   agents)`, clamped to [1, 3]; when the drop rate since the start of the day exceeds the
//!   target, `HardLimit` sets the level to 1 and `Average` halves it; every 2.5 s it places
//!   `round(level * agents) - lines in use`.
//! - `ErlangB`: open loop. Knowing the true answer rate and handle time, it dials as a Poisson
//!   process at the rate whose live answers, offered to the team as an Erlang loss system, are
//!   blocked with probability equal to the target. The classic textbook bound.

use std::collections::VecDeque;

use crate::error::Result;
use crate::pacing::{AgentState, PacingEngine, Unanswered};

use super::rng::Rng;

/// Events in, a decision out: the same contract as `PacingEngine`, with integer ids.
pub trait Policy {
    fn agent_state(&mut self, agent: u64, state: AgentState, now: f64) -> Result<()>;
    fn call_dialed(&mut self, call: u64, now: f64) -> Result<()>;
    fn call_answered(&mut self, call: u64, now: f64) -> Result<()>;
    fn call_connected(&mut self, call: u64, now: f64) -> Result<()>;
    fn call_abandoned(&mut self, call: u64, now: f64) -> Result<()>;
    fn call_unanswered(&mut self, call: u64, reason: Unanswered, now: f64) -> Result<()>;
    fn call_ended(&mut self, call: u64, now: f64) -> Result<()>;
    fn decide(&mut self, now: f64) -> Result<u32>;
}

impl Policy for PacingEngine<u64> {
    fn agent_state(&mut self, agent: u64, state: AgentState, now: f64) -> Result<()> {
        PacingEngine::agent_state(self, &agent, state, now)
    }
    fn call_dialed(&mut self, call: u64, now: f64) -> Result<()> {
        PacingEngine::call_dialed(self, &call, now)
    }
    fn call_answered(&mut self, call: u64, now: f64) -> Result<()> {
        PacingEngine::call_answered(self, &call, now)
    }
    fn call_connected(&mut self, call: u64, now: f64) -> Result<()> {
        PacingEngine::call_connected(self, &call, now)
    }
    fn call_abandoned(&mut self, call: u64, now: f64) -> Result<()> {
        PacingEngine::call_abandoned(self, &call, now)
    }
    fn call_unanswered(&mut self, call: u64, reason: Unanswered, now: f64) -> Result<()> {
        PacingEngine::call_unanswered(self, &call, reason, now)
    }
    fn call_ended(&mut self, call: u64, now: f64) -> Result<()> {
        PacingEngine::call_ended(self, &call, now)
    }
    fn decide(&mut self, now: f64) -> Result<u32> {
        PacingEngine::decide(self, now)
    }
}

/// Lines and agents as a line-counting dialer sees them.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    agents: Vec<AgentState>,
    pub ready: u32,
    pub staffed: u32,
    /// Ringing, answered-and-waiting, and connected calls.
    pub in_use: u32,
    pub waiting: u32,
    pub answers: u64,
    pub abandons: u64,
}

impl Lines {
    fn agent(&mut self, agent: u64, state: AgentState) {
        let i = agent as usize;
        if self.agents.len() <= i {
            self.agents.resize(i + 1, AgentState::Offline);
        }
        let old = std::mem::replace(&mut self.agents[i], state);
        let staffed = |s| {
            matches!(
                s,
                AgentState::Ready | AgentState::Talking | AgentState::Wrap
            )
        };
        self.ready = self.ready + u32::from(state == AgentState::Ready)
            - u32::from(old == AgentState::Ready);
        self.staffed = self.staffed + u32::from(staffed(state)) - u32::from(staffed(old));
    }
}

macro_rules! line_events {
    () => {
        fn agent_state(&mut self, agent: u64, state: AgentState, _now: f64) -> Result<()> {
            self.lines.agent(agent, state);
            Ok(())
        }
        fn call_dialed(&mut self, _call: u64, _now: f64) -> Result<()> {
            self.lines.in_use += 1;
            Ok(())
        }
        fn call_answered(&mut self, _call: u64, _now: f64) -> Result<()> {
            self.lines.waiting += 1;
            self.lines.answers += 1;
            Ok(())
        }
        fn call_connected(&mut self, _call: u64, _now: f64) -> Result<()> {
            self.lines.waiting -= 1;
            Ok(())
        }
        fn call_abandoned(&mut self, _call: u64, _now: f64) -> Result<()> {
            self.lines.waiting -= 1;
            self.lines.abandons += 1;
            Ok(())
        }
        fn call_unanswered(&mut self, _call: u64, _reason: Unanswered, _now: f64) -> Result<()> {
            self.lines.in_use -= 1;
            Ok(())
        }
        fn call_ended(&mut self, _call: u64, _now: f64) -> Result<()> {
            self.lines.in_use -= 1;
            Ok(())
        }
    };
}

/// A fixed dial level: `round(ratio * staffed) - lines in use`, every tick.
#[derive(Debug, Clone)]
pub struct FixedRatio {
    pub ratio: f64,
    lines: Lines,
}

impl FixedRatio {
    pub fn new(ratio: f64) -> Self {
        FixedRatio {
            ratio,
            lines: Lines::default(),
        }
    }
}

impl Policy for FixedRatio {
    line_events!();
    fn decide(&mut self, _now: f64) -> Result<u32> {
        let want = (self.ratio * f64::from(self.lines.staffed)).round() as u32;
        Ok(want.saturating_sub(self.lines.in_use))
    }
}

/// What VICIdial does when the drop rate exceeds the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropAction {
    /// `ADAPT_HARD_LIMIT`: the level falls to 1.
    HardLimit,
    /// `ADAPT_AVERAGE`: the level halves.
    Average,
}

#[derive(Debug, Clone)]
pub struct Vicidial {
    pub action: DropAction,
    pub target: f64,
    pub level: f64,
    lines: Lines,
    samples: VecDeque<(f64, u32, u32, u32)>,
    last_adapt: f64,
    last_place: f64,
}

impl Vicidial {
    pub const ADAPT_S: f64 = 15.0;
    pub const PLACE_S: f64 = 2.5;
    pub const MAX_LEVEL: f64 = 3.0;

    pub fn new(action: DropAction, target: f64) -> Self {
        Vicidial {
            action,
            target,
            level: 1.0,
            lines: Lines::default(),
            samples: VecDeque::new(),
            last_adapt: 0.0,
            last_place: f64::NEG_INFINITY,
        }
    }
}

impl Policy for Vicidial {
    line_events!();
    fn decide(&mut self, now: f64) -> Result<u32> {
        let l = &self.lines;
        self.samples.push_back((now, l.ready, l.waiting, l.staffed));
        while self
            .samples
            .front()
            .is_some_and(|s| s.0 <= now - Self::ADAPT_S)
        {
            self.samples.pop_front();
        }
        if now - self.last_adapt >= Self::ADAPT_S {
            self.last_adapt = now;
            let n = self.samples.len().max(1) as f64;
            let mean = |f: fn(&(f64, u32, u32, u32)) -> u32| {
                self.samples.iter().map(|s| f64::from(f(s))).sum::<f64>() / n
            };
            let (ready, waiting, staffed) = (mean(|s| s.1), mean(|s| s.2), mean(|s| s.3));
            if staffed > 0.0 {
                self.level *= 1.0 + (ready - waiting) / staffed;
            }
            self.level = self.level.clamp(1.0, Self::MAX_LEVEL);
            let l = &self.lines;
            if l.answers > 0 && l.abandons as f64 / l.answers as f64 > self.target {
                self.level = match self.action {
                    DropAction::HardLimit => 1.0,
                    DropAction::Average => (self.level / 2.0).max(1.0),
                };
            }
        }
        if now - self.last_place < Self::PLACE_S {
            return Ok(0);
        }
        self.last_place = now;
        let want = (self.level * f64::from(self.lines.staffed)).round() as u32;
        Ok(want.saturating_sub(self.lines.in_use))
    }
}

/// Open-loop Poisson dialling at the Erlang-B rate for the target (knows the true parameters).
#[derive(Debug, Clone)]
pub struct ErlangB {
    /// Calls per second.
    pub rate: f64,
    rng: Rng,
    next: f64,
    lines: Lines,
}

impl ErlangB {
    /// `agents` servers, live-answer probability `p`, mean handle time `handle_s`: the dial rate
    /// whose live answers are blocked with probability `target`.
    pub fn new(agents: u32, p: f64, handle_s: f64, target: f64, seed: u64) -> Self {
        let load = erlang_b_load(agents, target);
        let rate = load / (p.max(1e-6) * handle_s.max(1e-6));
        let mut rng = Rng::new(seed ^ 0xE71A_46B0);
        let next = rng.exponential(rate.max(1e-9));
        ErlangB {
            rate,
            rng,
            next,
            lines: Lines::default(),
        }
    }
}

impl Policy for ErlangB {
    line_events!();
    fn decide(&mut self, now: f64) -> Result<u32> {
        let mut n = 0;
        while self.next <= now {
            n += 1;
            self.next += self.rng.exponential(self.rate.max(1e-9));
        }
        Ok(n)
    }
}

/// Erlang B blocking probability for `servers` and offered load `a` (the stable recursion).
pub fn erlang_b(servers: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=servers {
        b = a * b / (f64::from(k) + a * b);
    }
    b
}

/// The offered load at which `servers` block with probability `target` (bisection).
pub fn erlang_b_load(servers: u32, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, f64::from(servers.max(1)) * 4.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if erlang_b(servers, mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_b_known_values() {
        // Standard tables: 10 servers at 1% blocking carry 4.46 Erlangs; 100 at 1% carry 84.06.
        assert!((erlang_b_load(10, 0.01) - 4.46).abs() < 0.01);
        assert!((erlang_b_load(100, 0.01) - 84.06).abs() < 0.05);
        assert!((erlang_b(1, 1.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn vicidial_hard_limit_drops_level_when_over_target() {
        let mut v = Vicidial::new(DropAction::HardLimit, 0.03);
        for a in 0..10 {
            v.agent_state(a, AgentState::Ready, 0.0).unwrap();
        }
        // All ready for 15 s: the level doubles (1 + 10/10), clamped to 3.
        for t in 0..=30 {
            v.decide(f64::from(t)).unwrap();
        }
        assert!(v.level > 1.5, "{}", v.level);
        for c in 0..10 {
            v.call_dialed(c, 31.0).unwrap();
            v.call_answered(c, 31.0).unwrap();
            v.call_abandoned(c, 31.0).unwrap();
        }
        for t in 31..=50 {
            v.decide(f64::from(t)).unwrap();
        }
        assert_eq!(v.level, 1.0);
    }
}

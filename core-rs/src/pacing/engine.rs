//! [`PacingEngine`]: the state a decision reads (agents, calls in flight, the estimators, the
//! abandon budget) and the events that change it.
//!
//! Every event checks first and changes the state only when it is accepted: a refused event
//! (unknown call, impossible transition, time going backwards) leaves the engine as it was.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;

use super::budget::AbandonWindow;
use super::decide::{Control, Decision, Derived};
use super::estimate::{Cohort, CENSORED};
use super::slots::Slots;
use super::{AgentState, Config, Mode, Unanswered};
use crate::error::{Error, Result};

/// Calls dialled that the live-answer estimates look back over (resolved or still ringing).
pub(crate) const DIAL_COHORT: usize = 1000;
/// Agents' talk periods (and wrap periods) the estimates look back over.
pub(crate) const AGENT_COHORT: usize = 400;
/// Kinds of call ending in the dial cohort.
pub(crate) const LIVE: u8 = 0;
pub(crate) const NOT_LIVE: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Ringing,
    /// Answered by a person, waiting for an agent.
    Waiting,
    Connected,
    /// Abandoned: the line plays the identification message until `call_ended`.
    Closing,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Ringing => "ringing",
            Phase::Waiting => "answered and waiting for an agent",
            Phase::Connected => "connected to an agent",
            Phase::Closing => "abandoned",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Call<K> {
    pub key: K,
    pub phase: Phase,
    /// Id in the dial cohort.
    pub cohort: u64,
    /// Slot in `ringing` while ringing.
    pub slot: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Agent<K> {
    pub key: K,
    pub state: AgentState,
    /// When the current state began.
    pub since: f64,
    /// Ids of the current talk and wrap periods in their cohorts.
    pub talk_id: u64,
    pub wrap_id: u64,
    /// Slot in `talking` or `wrapping` while in those states.
    pub slot: usize,
}

/// Counters since the engine was built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub dialed: u64,
    pub answered: u64,
    pub connected: u64,
    pub abandoned: u64,
    pub unanswered: [u64; 4],
}

/// What `stats()` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub mode: &'static str,
    pub window_live_answers: u64,
    pub window_abandons: u64,
    /// Abandons / live answers over the regulatory window (0 with no answers).
    pub window_abandon_rate: f64,
    /// `target * answers - abandons`, looking ahead at answers about to leave the window.
    pub abandon_budget: f64,
    pub totals: Totals,
    pub agents: [u32; 4],
    pub calls_ringing: u32,
    pub calls_waiting: u32,
    pub calls_connected: u32,
    pub calls_closing: u32,
    /// Ringing lines per staffed agent.
    pub dial_ratio: f64,
    pub live_answer_rate: f64,
    pub answer_delay_median_s: f64,
    pub answer_delay_p90_s: f64,
    pub talk_time_mean_s: f64,
    pub wrap_time_mean_s: f64,
    /// Finished observations behind the estimates: calls resolved, talk and wrap periods.
    pub samples: [usize; 3],
    pub last_decision: Decision,
}

/// The pacing engine of one campaign. `K` is the caller's id type for calls and agents (`String`
/// from Python, integers in the simulator).
#[derive(Debug, Clone)]
pub struct PacingEngine<K> {
    pub(crate) cfg: Config,
    pub(crate) last: f64,
    pub(crate) agent_index: HashMap<K, usize>,
    pub(crate) agents: Vec<Agent<K>>,
    /// Agents per state: ready, talking, wrap, away (and offline, only while being added).
    pub(crate) agent_counts: [u32; 5],
    pub(crate) call_index: HashMap<K, usize>,
    pub(crate) calls: Vec<Call<K>>,
    /// Dial times of the ringing calls, talk and wrap-up start times of the agents in them.
    pub(crate) ringing: Slots,
    pub(crate) talking: Slots,
    pub(crate) wrapping: Slots,
    /// Calls per phase: ringing, waiting, connected, closing.
    pub(crate) call_counts: [u32; 4],
    pub(crate) dials: Cohort,
    pub(crate) talk: Cohort,
    pub(crate) wrap: Cohort,
    pub(crate) budget: AbandonWindow,
    pub(crate) tokens: f64,
    pub(crate) tokens_at: f64,
    pub(crate) derived: Derived,
    pub(crate) control: Control,
    pub(crate) totals: Totals,
    pub(crate) last_decision: Decision,
}

impl<K: Eq + Hash + Clone + Display> PacingEngine<K> {
    pub fn new(cfg: Config) -> Result<Self> {
        cfg.validate()?;
        let tokens = cfg.max_cps.map_or(0.0, |c| c.max(1.0));
        Ok(PacingEngine {
            budget: AbandonWindow::new(cfg.abandon_window_s),
            cfg,
            last: f64::NEG_INFINITY,
            agent_index: HashMap::new(),
            agents: Vec::new(),
            agent_counts: [0; 5],
            call_index: HashMap::new(),
            calls: Vec::new(),
            ringing: Slots::default(),
            talking: Slots::default(),
            wrapping: Slots::default(),
            call_counts: [0; 4],
            dials: Cohort::new(DIAL_COHORT),
            talk: Cohort::new(AGENT_COHORT),
            wrap: Cohort::new(AGENT_COHORT),
            tokens,
            tokens_at: f64::NEG_INFINITY,
            derived: Derived::default(),
            control: Control::default(),
            totals: Totals::default(),
            last_decision: Decision::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Replace the settings (validated first; nothing changes if they are refused).
    pub fn configure(&mut self, cfg: Config) -> Result<()> {
        cfg.validate()?;
        if cfg.abandon_window_s != self.cfg.abandon_window_s {
            let now = if self.last.is_finite() {
                self.last
            } else {
                0.0
            };
            self.budget.set_window(cfg.abandon_window_s, now);
        }
        if cfg.max_cps != self.cfg.max_cps {
            self.tokens = cfg.max_cps.map_or(0.0, |c| c.max(1.0));
        }
        self.cfg = cfg;
        self.derived.stale = true;
        Ok(())
    }

    /// Check `now` against the last event's time; it becomes the last on success.
    pub(crate) fn tick(&mut self, event: &'static str, now: f64) -> Result<()> {
        if !now.is_finite() {
            return Err(Error::invalid(
                "now",
                format!("{event}: {now} is not a finite number of seconds"),
            ));
        }
        if now < self.last {
            return Err(Error::TimeWentBackwards {
                event,
                now,
                last: self.last,
            });
        }
        self.last = now;
        Ok(())
    }

    fn call_slot<Q>(&self, event: &'static str, call: &Q) -> Result<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ?Sized,
    {
        match self.call_index.get(call) {
            Some(&i) => Ok(i),
            None => Err(Error::UnknownCall {
                event,
                call: call.to_string(),
            }),
        }
    }

    fn expect_phase(
        &self,
        event: &'static str,
        i: usize,
        want: Phase,
        expected: &'static str,
    ) -> Result<()> {
        let c = &self.calls[i];
        if c.phase == want {
            Ok(())
        } else {
            Err(Error::UnexpectedEvent {
                event,
                call: c.key.to_string(),
                state: c.phase.as_str(),
                expected,
            })
        }
    }

    /// The checks every call event makes before it changes anything: the call is known, in the
    /// phase the event needs, and `now` does not go back. Returns the call's index.
    fn accept<Q>(
        &mut self,
        event: &'static str,
        call: &Q,
        want: Phase,
        expected: &'static str,
        now: f64,
    ) -> Result<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ?Sized,
    {
        let i = self.call_slot(event, call)?;
        self.expect_phase(event, i, want, expected)?;
        self.tick(event, now)?;
        Ok(i)
    }

    fn set_phase(&mut self, i: usize, phase: Phase) {
        let old = self.calls[i].phase;
        if old == Phase::Ringing && phase != Phase::Ringing {
            if let Some(moved) = self.ringing.remove(self.calls[i].slot) {
                self.calls[moved].slot = self.calls[i].slot;
            }
        }
        self.call_counts[old as usize] -= 1;
        self.call_counts[phase as usize] += 1;
        self.calls[i].phase = phase;
    }

    fn remove_call(&mut self, i: usize) {
        self.set_phase(i, Phase::Closing); // leaves the ringing slots, if it was in them
        let call = self.calls.swap_remove(i);
        self.call_counts[call.phase as usize] -= 1;
        self.call_index.remove::<K>(&call.key);
        if let Some(moved) = self.calls.get(i) {
            self.call_index.insert(moved.key.clone(), i);
            if moved.phase == Phase::Ringing {
                self.ringing.set_owner(moved.slot, i);
            }
        }
    }

    fn agent_slots(&mut self, state: AgentState) -> Option<&mut Slots> {
        match state {
            AgentState::Talking => Some(&mut self.talking),
            AgentState::Wrap => Some(&mut self.wrapping),
            _ => None,
        }
    }

    /// An agent's state changed (an unknown agent is added; `Offline` removes it).
    pub fn agent_state<Q>(&mut self, agent: &Q, state: AgentState, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        self.tick("agent_state", now)?;
        let i = match self.agent_index.get(agent) {
            Some(&i) => i,
            None if state == AgentState::Offline => return Ok(()),
            None => {
                self.agent_index.insert(agent.to_owned(), self.agents.len());
                let a = Agent {
                    key: agent.to_owned(),
                    state: AgentState::Offline,
                    since: now,
                    talk_id: 0,
                    wrap_id: 0,
                    slot: 0,
                };
                self.agents.push(a);
                self.agent_counts[AgentState::Offline as usize] += 1;
                self.agents.len() - 1
            }
        };
        let a = &mut self.agents[i];
        let old = a.state;
        if old == state {
            return Ok(());
        }
        // Talk and wrap periods feed their cohorts; leaving for away or offline censors them.
        let working = matches!(
            state,
            AgentState::Ready | AgentState::Talking | AgentState::Wrap
        );
        match old {
            AgentState::Talking => {
                self.talk
                    .close(a.talk_id, now, if working { 0 } else { CENSORED });
                if state == AgentState::Ready {
                    // No wrap-up: a wrap of length 0.
                    let id = self.wrap.open(now);
                    self.wrap.close(id, now, 0);
                }
            }
            AgentState::Wrap => self
                .wrap
                .close(a.wrap_id, now, if working { 0 } else { CENSORED }),
            _ => {}
        }
        match state {
            AgentState::Talking => a.talk_id = self.talk.open(now),
            AgentState::Wrap => a.wrap_id = self.wrap.open(now),
            _ => {}
        }
        a.state = state;
        a.since = now;
        let slot = a.slot;
        if let Some(moved) = self.agent_slots(old).and_then(|s| s.remove(slot)) {
            self.agents[moved].slot = slot;
        }
        if let Some(slots) = self.agent_slots(state) {
            let slot = slots.insert(i, now);
            self.agents[i].slot = slot;
        }
        self.agent_counts[old as usize] -= 1;
        if state == AgentState::Offline {
            let gone = self.agents.swap_remove(i);
            self.agent_index.remove::<K>(&gone.key);
            if let Some(moved) = self.agents.get(i) {
                self.agent_index.insert(moved.key.clone(), i);
                let (state, slot) = (moved.state, moved.slot);
                if let Some(slots) = self.agent_slots(state) {
                    slots.set_owner(slot, i);
                }
            }
        } else {
            let staffed = |c: &[u32; 5]| c[0] + c[1] + c[2];
            if staffed(&self.agent_counts) == 0 && state != AgentState::Away {
                self.control.shift_starts();
            }
            self.agent_counts[state as usize] += 1;
        }
        Ok(())
    }

    /// A call was placed.
    pub fn call_dialed<Q>(&mut self, call: &Q, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(&i) = self.call_index.get(call) {
            let c = &self.calls[i];
            return Err(Error::UnexpectedEvent {
                event: "call_dialed",
                call: c.key.to_string(),
                state: c.phase.as_str(),
                expected: "a call id is dialled once; give each attempt its own id",
            });
        }
        self.tick("call_dialed", now)?;
        self.refill(now);
        if self.cfg.max_cps.is_some() {
            self.tokens -= 1.0;
        }
        self.call_index.insert(call.to_owned(), self.calls.len());
        let cohort = self.dials.open(now);
        let slot = self.ringing.insert(self.calls.len(), now);
        self.calls.push(Call {
            key: call.to_owned(),
            phase: Phase::Ringing,
            cohort,
            slot,
        });
        self.call_counts[Phase::Ringing as usize] += 1;
        self.totals.dialed += 1;
        Ok(())
    }

    /// A person picked up.
    pub fn call_answered<Q>(&mut self, call: &Q, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        let i = self.accept(
            "call_answered",
            call,
            Phase::Ringing,
            "only a ringing call can be answered",
            now,
        )?;
        self.dials.close(self.calls[i].cohort, now, LIVE);
        self.set_phase(i, Phase::Waiting);
        self.budget.answered(now);
        self.control.answered(now);
        self.totals.answered += 1;
        Ok(())
    }

    /// The answered call was handed to an agent (or an IVR port).
    pub fn call_connected<Q>(&mut self, call: &Q, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        let i = self.accept(
            "call_connected",
            call,
            Phase::Waiting,
            "report call_answered before call_connected",
            now,
        )?;
        self.set_phase(i, Phase::Connected);
        self.totals.connected += 1;
        Ok(())
    }

    /// The answered call found no agent within the connect limit.
    pub fn call_abandoned<Q>(&mut self, call: &Q, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        let i = self.accept(
            "call_abandoned",
            call,
            Phase::Waiting,
            "only an answered call waiting for an agent is abandoned",
            now,
        )?;
        self.set_phase(i, Phase::Closing);
        self.budget.abandoned(now);
        self.control.abandoned(now);
        self.totals.abandoned += 1;
        Ok(())
    }

    /// The call ended without a live answer; this ends it (no `call_ended` follows).
    pub fn call_unanswered<Q>(&mut self, call: &Q, reason: Unanswered, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        let i = self.accept(
            "call_unanswered",
            call,
            Phase::Ringing,
            "call_unanswered is for a call nobody answered",
            now,
        )?;
        self.dials.close(self.calls[i].cohort, now, NOT_LIVE);
        self.remove_call(i);
        self.totals.unanswered[reason as usize] += 1;
        Ok(())
    }

    /// An answered call hung up (connected, abandoned, or still waiting for an agent).
    pub fn call_ended<Q>(&mut self, call: &Q, now: f64) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Display + ToOwned<Owned = K> + ?Sized,
    {
        let i = self.call_slot("call_ended", call)?;
        if self.calls[i].phase == Phase::Ringing {
            return Err(Error::UnexpectedEvent {
                event: "call_ended",
                call: call.to_string(),
                state: Phase::Ringing.as_str(),
                expected:
                    "report call_unanswered for a call nobody answered, or call_answered first",
            });
        }
        self.tick("call_ended", now)?;
        self.remove_call(i);
        Ok(())
    }

    /// Refill the CPS token bucket up to `now` (it holds at most one second's worth, or 1).
    pub(crate) fn refill(&mut self, now: f64) {
        let Some(cps) = self.cfg.max_cps else { return };
        if self.tokens_at.is_finite() {
            self.tokens = (self.tokens + (now - self.tokens_at) * cps).min(cps.max(1.0));
        }
        self.tokens_at = now;
    }

    pub fn stats(&self) -> Stats {
        let (answers, abandons) = self.budget.counts();
        let [ready, talking, wrap, ..] = self.agent_counts;
        let staffed = ready + talking + wrap;
        let now = if self.last.is_finite() {
            self.last
        } else {
            0.0
        };
        Stats {
            mode: self.cfg.mode.as_str(),
            window_live_answers: answers,
            window_abandons: abandons,
            window_abandon_rate: if answers == 0 {
                0.0
            } else {
                abandons as f64 / answers as f64
            },
            abandon_budget: self
                .budget
                .conservative_budget(now, self.cfg.target_abandon_rate, 0.0),
            totals: self.totals.clone(),
            agents: [
                self.agent_counts[0],
                self.agent_counts[1],
                self.agent_counts[2],
                self.agent_counts[3],
            ],
            calls_ringing: self.call_counts[0],
            calls_waiting: self.call_counts[1],
            calls_connected: self.call_counts[2],
            calls_closing: self.call_counts[3],
            dial_ratio: if staffed == 0 {
                0.0
            } else {
                f64::from(self.call_counts[0]) / f64::from(staffed)
            },
            live_answer_rate: self.derived.p,
            answer_delay_median_s: self.derived.horizons[1],
            answer_delay_p90_s: self.derived.horizons[2],
            talk_time_mean_s: self.talk.mean(0),
            wrap_time_mean_s: self.wrap.mean(0),
            samples: [
                self.dials.finished(),
                self.talk.finished(),
                self.wrap.finished(),
            ],
            last_decision: self.last_decision.clone(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }

    /// The indexes agree with each other (for tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert_eq!(self.ringing.len(), self.call_counts[0] as usize);
        assert_eq!(self.talking.len(), self.agent_counts[1] as usize);
        assert_eq!(self.wrapping.len(), self.agent_counts[2] as usize);
        assert_eq!(self.calls.len(), self.call_index.len());
        for (i, c) in self.calls.iter().enumerate() {
            assert_eq!(self.call_index[&c.key], i);
            if c.phase == Phase::Ringing {
                assert_eq!(self.ringing.owner(c.slot), i);
            }
        }
        for (i, a) in self.agents.iter().enumerate() {
            assert_eq!(self.agent_index[&a.key], i);
            match a.state {
                AgentState::Talking => assert_eq!(self.talking.owner(a.slot), i),
                AgentState::Wrap => assert_eq!(self.wrapping.owner(a.slot), i),
                _ => {}
            }
        }
    }
}

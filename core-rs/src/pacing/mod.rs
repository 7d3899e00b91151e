//! The pacing engine: how many calls to place now so that agents wait as little as possible while
//! the share of live answers that find no agent within the connect limit stays under the cap over
//! every regulatory window. Pure: no I/O, no clock (every event carries `now`).
//!
//! - [`engine`]: [`PacingEngine`], the events it takes and the stats it reports.
//! - [`decide`]: the decision (caps, the progressive floor, the predictive search).
//! - [`estimate`]: windowed duration samples and the conditional-probability tables.
//! - [`budget`]: live answers and abandons over the regulatory window.

pub mod budget;
pub mod decide;
pub mod engine;
pub mod estimate;
pub mod slots;
#[cfg(test)]
mod tests;

pub use decide::{Decision, DecisionInputs};
pub use engine::{PacingEngine, Stats};

use crate::error::{Error, Result};

/// How a campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The agent asks for each call: never more calls than ready agents without one.
    Manual,
    /// The agent previews the customer, then the call is placed: as `Manual` for pacing.
    Preview,
    /// One line per idle agent: zero abandons by construction.
    Progressive,
    /// Lines for the agents about to be free, abandon-bounded.
    Predictive,
    /// Agentless: `max_channels` IVR ports, each an agent that is always ready.
    Ivr,
}

impl Mode {
    pub const NAMES: [&'static str; 5] = ["manual", "preview", "progressive", "predictive", "ivr"];

    pub fn parse(s: &str) -> Result<Mode> {
        Ok(match s {
            "manual" => Mode::Manual,
            "preview" => Mode::Preview,
            "progressive" => Mode::Progressive,
            "predictive" => Mode::Predictive,
            "ivr" => Mode::Ivr,
            _ => {
                return Err(Error::invalid(
                    "mode",
                    format!("{s:?}: expected one of {}", Self::NAMES.join(", ")),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// An agent's state as the runtime reports it. `Offline` removes the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Ready,
    Talking,
    Wrap,
    Away,
    Offline,
}

impl AgentState {
    pub const NAMES: [&'static str; 5] = ["ready", "talking", "wrap", "away", "offline"];

    pub fn parse(s: &str) -> Result<AgentState> {
        Ok(match s {
            "ready" => AgentState::Ready,
            "talking" => AgentState::Talking,
            "wrap" => AgentState::Wrap,
            "away" => AgentState::Away,
            "offline" => AgentState::Offline,
            _ => {
                return Err(Error::invalid(
                    "agent state",
                    format!("{s:?}: expected one of {}", Self::NAMES.join(", ")),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Why a call ended without a live answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    NoAnswer,
    Busy,
    Failed,
    /// An answering machine picked up: not a live answer.
    Machine,
}

impl Unanswered {
    pub const NAMES: [&'static str; 4] = ["no_answer", "busy", "failed", "machine"];

    pub fn parse(s: &str) -> Result<Unanswered> {
        Ok(match s {
            "no_answer" => Unanswered::NoAnswer,
            "busy" => Unanswered::Busy,
            "failed" => Unanswered::Failed,
            "machine" => Unanswered::Machine,
            _ => {
                return Err(Error::invalid(
                    "reason",
                    format!("{s:?}: expected one of {}", Self::NAMES.join(", ")),
                ))
            }
        })
    }
}

/// The engine's settings; every one can change while the engine runs (`PacingEngine::configure`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    /// The cap on abandons / live answers over the window (0.03 = 3 %).
    pub target_abandon_rate: f64,
    /// The regulatory window, seconds (UK: 86 400; US: 30 days).
    pub abandon_window_s: f64,
    /// An answered call that finds no agent within this many seconds is abandoned.
    pub connect_limit_s: f64,
    /// Ringing lines never exceed this many per staffed agent (ready, talking or wrap).
    pub max_dial_ratio: f64,
    /// Calls in progress (ringing, answered, connected) never exceed this. Required for `ivr`.
    pub max_channels: Option<u32>,
    /// New calls per second never exceed this (a token bucket holding at most one second's worth).
    pub max_cps: Option<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Predictive,
            target_abandon_rate: 0.03,
            abandon_window_s: 86_400.0,
            connect_limit_s: 2.0,
            max_dial_ratio: 3.0,
            max_channels: None,
            max_cps: None,
        }
    }
}

impl Config {
    /// Check every setting; the error names the first one out of range and what it accepts.
    pub fn validate(&self) -> Result<()> {
        fn range(what: &'static str, v: f64, lo: f64, hi: f64) -> Result<()> {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(
                    what,
                    format!("{v}: expected a number in [{lo}, {hi}]"),
                ))
            }
        }
        range("target_abandon_rate", self.target_abandon_rate, 0.0, 0.5)?;
        range(
            "abandon_window_s",
            self.abandon_window_s,
            1.0,
            400.0 * 86_400.0,
        )?;
        range("connect_limit_s", self.connect_limit_s, 0.1, 60.0)?;
        range("max_dial_ratio", self.max_dial_ratio, 1.0, 100.0)?;
        if let Some(c) = self.max_cps {
            range("max_cps", c, 0.001, 1e6)?;
        }
        if self.max_channels == Some(0) {
            return Err(Error::invalid(
                "max_channels",
                "0: expected at least 1 (or None for no cap)",
            ));
        }
        if self.mode == Mode::Ivr && self.max_channels.is_none() {
            return Err(Error::invalid(
                "max_channels",
                "mode \"ivr\" needs max_channels: the number of IVR ports is what limits it",
            ));
        }
        Ok(())
    }
}

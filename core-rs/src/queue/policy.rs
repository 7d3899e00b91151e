//! Outcome policy: what becomes of a contact once its call has an outcome.
//!
//! The caller says what happened (an outcome name such as `no_answer`, `busy`, `answered`,
//! `agreed`, and optionally a callback or a "do not call back" period); the policy turns it into
//! an [`Action`] that the `complete` script applies atomically together with the attempt count.

use crate::error::{Error, Result};

/// The outcome of a dialled call cut by the dialer's death before an answer (`lua/claim.lua`).
pub const INTERRUPTED: &str = "interrupted";

/// Outcomes retried by default (the seed campaign: no answer is called once more; a call cut by
/// the dialer's death is an attempt, retried while attempts remain).
pub const DEFAULT_RETRY_ON: &[&str] = &["no_answer", "busy", INTERRUPTED];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomePolicy {
    /// Attempts in all, the first one included (the seed campaign: 2).
    pub max_attempts: u32,
    /// Delay before a retryable outcome is due again.
    pub retry_delay_ms: u64,
    /// Outcome names that are retried while attempts remain.
    pub retry_on: Vec<String>,
}

impl Default for OutcomePolicy {
    fn default() -> Self {
        OutcomePolicy {
            max_attempts: 2,
            retry_delay_ms: 3_600_000,
            retry_on: DEFAULT_RETRY_ON.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl OutcomePolicy {
    pub fn new(max_attempts: u32, retry_delay_ms: u64, retry_on: Vec<String>) -> Result<Self> {
        if max_attempts == 0 {
            return Err(Error::invalid("max_attempts", "must be at least 1"));
        }
        for o in &retry_on {
            check_outcome(o)?;
        }
        Ok(OutcomePolicy {
            max_attempts,
            retry_delay_ms,
            retry_on,
        })
    }

    /// Whether `outcome` is retried while attempts remain.
    pub fn retries(&self, outcome: &str) -> bool {
        self.retry_on.iter().any(|o| o == outcome)
    }

    /// Decide the action for one completion.
    pub fn action(&self, c: &Completion, now_ms: u64) -> Action {
        if c.suppressed {
            return Action::Suppressed;
        }
        if c.release {
            return Action::Release;
        }
        if let Some((at, agent)) = &c.callback {
            return Action::Callback {
                at_ms: *at,
                agent: agent.clone(),
            };
        }
        if let Some(until) = c.do_not_call_back_until {
            return Action::DoNotCallBack { until_ms: until };
        }
        if self.retry_on.iter().any(|o| o == &c.outcome) {
            return Action::Retry {
                at_ms: now_ms + self.retry_delay_ms,
                max_attempts: self.max_attempts,
            };
        }
        Action::Final
    }
}

/// One finished (or given back) claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub number: u64,
    pub token: u64,
    pub outcome: String,
    /// Call back at this time (ms since the epoch), reserved for this agent.
    pub callback: Option<(u64, String)>,
    /// Do not call back before this time (ms since the epoch); then the contact is due again.
    pub do_not_call_back_until: Option<u64>,
    /// Give the contact back unused (no attempt counted): the dialer could not place the call.
    pub release: bool,
    /// The contact turned out to be on a suppression list: final, no attempt counted.
    pub suppressed: bool,
}

impl Completion {
    pub fn new(number: u64, token: u64, outcome: impl Into<String>) -> Self {
        Completion {
            number,
            token,
            outcome: outcome.into(),
            callback: None,
            do_not_call_back_until: None,
            release: false,
            suppressed: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Final,
    Retry { at_ms: u64, max_attempts: u32 },
    Callback { at_ms: u64, agent: String },
    DoNotCallBack { until_ms: u64 },
    Suppressed,
    Release,
}

impl Action {
    /// The script's arguments: action letter, at_ms, max_attempts, agent.
    pub(crate) fn script_args(&self) -> (&'static str, u64, u32, &str) {
        match self {
            Action::Final => ("F", 0, 0, ""),
            Action::Retry {
                at_ms,
                max_attempts,
            } => ("R", *at_ms, *max_attempts, ""),
            Action::Callback { at_ms, agent } => ("B", *at_ms, 0, agent.as_str()),
            Action::DoNotCallBack { until_ms } => ("N", *until_ms, 0, ""),
            Action::Suppressed => ("S", 0, 0, ""),
            Action::Release => ("U", 0, 0, ""),
        }
    }
}

/// Outcome names: 1-32 of `[a-z0-9_]`.
pub fn check_outcome(o: &str) -> Result<()> {
    if !o.is_empty()
        && o.len() <= 32
        && o.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::invalid(
            "outcome",
            format!("{o:?}: use 1 to 32 characters from a-z 0-9 _"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answer_is_retried_and_answered_is_final() {
        let p = OutcomePolicy::default();
        let c = Completion::new(1, 1, "no_answer");
        assert_eq!(
            p.action(&c, 1000),
            Action::Retry {
                at_ms: 1000 + 3_600_000,
                max_attempts: 2
            }
        );
        assert_eq!(
            p.action(&Completion::new(1, 1, "agreed"), 1000),
            Action::Final
        );
    }

    #[test]
    fn callback_and_do_not_call_back_take_precedence() {
        let p = OutcomePolicy::default();
        let mut c = Completion::new(1, 1, "no_answer");
        c.do_not_call_back_until = Some(5);
        assert_eq!(p.action(&c, 0), Action::DoNotCallBack { until_ms: 5 });
        c.callback = Some((9, "alice".into()));
        assert_eq!(
            p.action(&c, 0),
            Action::Callback {
                at_ms: 9,
                agent: "alice".into()
            }
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(OutcomePolicy::new(0, 1, vec![]).is_err());
        assert!(OutcomePolicy::new(2, 1, vec!["No Answer".into()]).is_err());
    }
}

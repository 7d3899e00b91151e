//! Completing claimed contacts with an outcome (`lua/complete.lua`): final, retry, callback,
//! do-not-call-back, or released, as the campaign's [`OutcomePolicy`](super::OutcomePolicy) says.

use redis::Value;

use super::policy::{self, Action, Completion};
use super::scripts::COMPLETE;
use super::CallQueue;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::text;

/// What a completion did, per contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completed {
    Final,
    Retry,
    /// A retryable outcome, but `max_attempts` was reached: final.
    Exhausted,
    Callback,
    DoNotCallBack,
    Suppressed,
    Released,
    /// The token is not the contact's live lease (expired and re-claimed, or completed already):
    /// nothing changed. Holds the contact's state letter now.
    Stale(char),
}

impl Completed {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "final" => Completed::Final,
            "retry" => Completed::Retry,
            "exhausted" => Completed::Exhausted,
            "callback" => Completed::Callback,
            "dnc" => Completed::DoNotCallBack,
            "suppressed" => Completed::Suppressed,
            "released" => Completed::Released,
            _ => Completed::Stale(s.strip_prefix("stale:")?.chars().next().unwrap_or('-')),
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Completed::Final => "final",
            Completed::Retry => "retry",
            Completed::Exhausted => "exhausted",
            Completed::Callback => "callback",
            Completed::DoNotCallBack => "do_not_call_back",
            Completed::Suppressed => "suppressed",
            Completed::Released => "released",
            Completed::Stale(_) => "stale",
        }
    }
}

impl CallQueue {
    /// Complete claimed contacts of `partition`; one result per completion, in order.
    pub fn complete(
        &mut self,
        partition: u32,
        items: &[Completion],
        now_ms: u64,
    ) -> Result<Vec<Completed>> {
        self.check_partition(partition)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let base = self.base(partition);
        // Completions sharing outcome and action share a "profile": the script gets each profile
        // once and three fields per contact.
        let mut profiles: Vec<(&str, Action)> = Vec::new();
        let mut index = Vec::with_capacity(items.len());
        for c in items {
            policy::check_outcome(&c.outcome)?;
            if let Some((_, agent)) = &c.callback {
                keys::check_name("agent id", agent)?;
            }
            let action = self.policy.action(c, now_ms);
            let at = match profiles
                .iter()
                .position(|(o, a)| *o == c.outcome && *a == action)
            {
                Some(i) => i,
                None => {
                    profiles.push((&c.outcome, action));
                    profiles.len() - 1
                }
            };
            index.push(at + 1);
        }
        let mut inv = COMPLETE.prepare_invoke();
        inv.key(&base).arg(now_ms).arg(profiles.len());
        for (outcome, action) in &profiles {
            let (letter, at, max, agent) = action.script_args();
            inv.arg(*outcome).arg(letter).arg(at).arg(max).arg(agent);
        }
        for (c, p) in items.iter().zip(&index) {
            inv.arg(c.number).arg(c.token).arg(*p);
        }
        let reply = self.store.invoke(&inv, "complete", &base)?;
        let Value::Array(items_out) = reply else {
            return Err(Error::protocol("complete", &base, "expected an array"));
        };
        items_out
            .iter()
            .map(|v| {
                text(v).and_then(|s| Completed::parse(&s)).ok_or_else(|| {
                    Error::protocol("complete", &base, format!("unexpected result {v:?}"))
                })
            })
            .collect()
    }

    /// Complete contacts of any partitions (each number's partition is derived from it); one
    /// result per completion, in order.
    pub fn complete_many(&mut self, items: &[Completion], now_ms: u64) -> Result<Vec<Completed>> {
        if self.partitions == 1 {
            return self.complete(0, items, now_ms);
        }
        let mut out: Vec<Option<Completed>> = vec![None; items.len()];
        for p in 0..self.partitions {
            let (idx, part): (Vec<usize>, Vec<Completion>) = items
                .iter()
                .enumerate()
                .filter(|(_, c)| keys::partition_of(c.number, self.partitions) == p)
                .map(|(i, c)| (i, c.clone()))
                .unzip();
            for (i, r) in idx.into_iter().zip(self.complete(p, &part, now_ms)?) {
                out[i] = Some(r);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or(Completed::Stale('-')))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_results_parse() {
        assert_eq!(Completed::parse("retry"), Some(Completed::Retry));
        assert_eq!(Completed::parse("stale:D"), Some(Completed::Stale('D')));
        assert_eq!(Completed::parse("nonsense"), None);
    }
}

//! Claiming: up to `n` due contacts of a partition are handed out under a lease (`lua/claim.lua`:
//! a deadline and a token per contact, one lease batch per claim). Contacts found on a
//! suppression list that changed since their import are completed as `suppressed` instead.

use redis::Value;

use super::mark::Interrupted;
use super::policy::{Completion, INTERRUPTED};
use super::scripts::CLAIM;
use super::CallQueue;
use crate::contacts::suppression;
use crate::error::{Error, Result};
use crate::store::{int, text};

/// How many expired leases one claim moves back to the queue at most.
const EXPIRED_SCAN: u32 = 1000;

/// Where a claimed contact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Callback,
    Retry,
    Fresh,
    /// A dead dialer's call its agent still has open, kept leased by the node that took over
    /// ([`CallQueue::adopt`](super::CallQueue::adopt)).
    Adopted,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Callback => "callback",
            Source::Retry => "retry",
            Source::Fresh => "fresh",
            Source::Adopted => "adopted",
        }
    }
}

/// A contact handed to a dialer under a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub number: u64,
    pub partition: u32,
    pub token: u64,
    /// The lease batch it was claimed in (the batch's first token): what [`CallQueue::renew`] extends.
    pub batch: u64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub source: Source,
    /// The agent a callback is reserved for.
    pub agent: Option<String>,
    /// Attribute (column, value) pairs from the import, when asked for.
    pub attrs: Vec<(String, String)>,
}

impl CallQueue {
    /// Claim up to `n` due contacts of `partition`, each leased for `lease_ms`. Contacts found on
    /// one of the campaign's suppression lists are completed as `suppressed` and not returned,
    /// so a number added to a list after the import is never dialled.
    pub fn claim(
        &mut self,
        partition: u32,
        n: usize,
        now_ms: u64,
        lease_ms: u64,
        with_attrs: bool,
    ) -> Result<Vec<Claim>> {
        self.claim_for(partition, n, now_ms, lease_ms, with_attrs, None)
    }

    /// [`claim`](Self::claim), taking due callbacks only of these `agents` (`None`: any; an empty
    /// list: none): a callback goes to the agent it is reserved for, and waits while that agent
    /// is not there to take it.
    pub fn claim_for(
        &mut self,
        partition: u32,
        n: usize,
        now_ms: u64,
        lease_ms: u64,
        with_attrs: bool,
        agents: Option<&[String]>,
    ) -> Result<Vec<Claim>> {
        self.claim_with(partition, n, now_ms, lease_ms, with_attrs, agents, None)
    }

    /// [`claim_for`](Self::claim_for); with `dialling`, by a dialer about to place every claimed
    /// call: each is marked dialled in the same script (no round trip more), so that if the dialer
    /// dies from now on its expired lease is an attempt ([`Mark::Dialled`](super::Mark)). The
    /// string is the dialler's name for itself, kept in each mark (`""`: none), so that whoever
    /// takes the partition over can tell a dead dialler's calls from a live one's
    /// ([`marks`](Self::marks)); at most 64 bytes of ASCII letters, digits, `-`, `.`, `:`, `_`.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_with(
        &mut self,
        partition: u32,
        n: usize,
        now_ms: u64,
        lease_ms: u64,
        with_attrs: bool,
        agents: Option<&[String]>,
        dialling: Option<&str>,
    ) -> Result<Vec<Claim>> {
        self.check_partition(partition)?;
        if let Some(owner) = dialling {
            check_owner(owner)?;
        }
        let cb_agents = match agents {
            None => "*".to_string(),
            Some(list) => {
                if let Some(bad) = list.iter().find(|a| a.is_empty() || a.contains('|')) {
                    return Err(Error::invalid(
                        "agents",
                        format!("{bad:?} is not an agent id"),
                    ));
                }
                format!("|{}|", list.join("|"))
            }
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        if lease_ms == 0 {
            return Err(Error::invalid("lease", "must be longer than 0 ms"));
        }
        let base = self.base(partition);
        let mut inv = CLAIM.prepare_invoke();
        inv.key(&base)
            .arg(now_ms)
            .arg(n)
            .arg(lease_ms)
            .arg(u8::from(with_attrs))
            .arg(EXPIRED_SCAN)
            .arg(&cb_agents)
            .arg(if self.policy.retries(INTERRUPTED) {
                "R"
            } else {
                "F"
            })
            .arg(self.policy.max_attempts)
            .arg(now_ms + self.policy.retry_delay_ms)
            .arg(u8::from(dialling.is_some()))
            .arg(dialling.unwrap_or(""))
            .arg(self.floor[partition as usize]);
        let reply = self.store.invoke(&inv, "claim", &base)?;
        if let Some(seq) = rewound(&reply) {
            return Err(Error::Rewound {
                campaign: self.campaign.clone(),
                partition,
                seq,
                floor: self.floor[partition as usize],
            });
        }
        let (lists, checked, mut claims, interrupted) = parse_claims(&reply, partition, &base)?;
        if let Some(last) = claims.last() {
            let f = &mut self.floor[partition as usize];
            *f = (*f).max(last.token);
        }
        self.interrupted.extend(interrupted);
        if with_attrs {
            let mut all: Vec<_> = claims.iter_mut().map(|c| &mut c.attrs).collect();
            self.resolve_attrs(&base, &mut all)?;
        }
        if lists.is_empty() || claims.is_empty() {
            return Ok(claims);
        }
        // Every contact was checked at import against each list's version then; while no list
        // has changed since, there is nothing new to find. A list that no longer exists fails
        // closed: the claims go back, no attempt counted, and nobody is dialled.
        let versions = match suppression::versions_if_all_exist(&mut self.store, &lists)? {
            Ok(v) => v,
            Err(missing) => {
                let back: Vec<Completion> = claims
                    .iter()
                    .map(|c| {
                        let mut x = Completion::new(c.number, c.token, "released");
                        x.release = true;
                        x
                    })
                    .collect();
                self.complete(partition, &back, now_ms)?;
                return Err(Error::ListMissing {
                    campaign: self.campaign.clone(),
                    lists: missing,
                });
            }
        };
        let now: Vec<String> = versions.iter().map(u64::to_string).collect();
        if now == checked {
            return Ok(claims);
        }
        let numbers: Vec<u64> = claims.iter().map(|c| c.number).collect();
        let hit = suppression::check_any(&mut self.store, &lists, &numbers)?;
        if !hit.iter().any(|h| *h) {
            return Ok(claims);
        }
        let (drop, keep): (Vec<_>, Vec<_>) = claims.into_iter().zip(hit).partition(|(_, h)| *h);
        let done: Vec<Completion> = drop
            .iter()
            .map(|(c, _)| {
                let mut x = Completion::new(c.number, c.token, "suppressed");
                x.suppressed = true;
                x
            })
            .collect();
        self.complete(partition, &done, now_ms)?;
        Ok(keep.into_iter().map(|(c, _)| c).collect())
    }
}

/// `{ 'rewound', seq }`: the claim script found the partition's sequence behind this queue's floor.
fn rewound(reply: &Value) -> Option<u64> {
    let Value::Array(items) = reply else {
        return None;
    };
    match items.as_slice() {
        [tag, seq] if text(tag).as_deref() == Some("rewound") => {
            Some(int(seq).unwrap_or(0).max(0) as u64)
        }
        _ => None,
    }
}

type Parsed = (Vec<String>, Vec<String>, Vec<Claim>, Vec<Interrupted>);

fn parse_claims(reply: &Value, partition: u32, base: &str) -> Result<Parsed> {
    let bad = |what: &str| Error::protocol("claim", base, what.to_string());
    let Value::Array(items) = reply else {
        return Err(bad("expected an array"));
    };
    let [Value::Array(meta), first, Value::Array(numbers), Value::Array(details), Value::Array(attrs)] =
        items.as_slice()
    else {
        return Err(bad(
            "expected { meta, first_token, numbers, details, attrs }",
        ));
    };
    let field = |i: usize| -> Vec<String> {
        meta.get(i)
            .and_then(text)
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (lists, checked) = (field(0), field(2));
    let mut interrupted = Vec::new();
    if let Some(Value::Array(flat)) = meta.get(3) {
        for x in flat.chunks(3) {
            let [n, a, r] = x else {
                return Err(bad("interrupted"));
            };
            interrupted.push(Interrupted {
                number: int(n).ok_or_else(|| bad("interrupted number"))? as u64,
                partition,
                attempts: int(a).ok_or_else(|| bad("interrupted attempts"))? as u32,
                result: text(r).ok_or_else(|| bad("interrupted result"))?,
            });
        }
    }
    let first = int(first).ok_or_else(|| bad("first token"))? as u64;
    let mut claims = Vec::with_capacity(numbers.len());
    for (i, v) in numbers.iter().enumerate() {
        let number = int(v).ok_or_else(|| bad("number"))? as u64;
        let raw = attrs.get(i).and_then(text).unwrap_or_default();
        let attrs = if raw.is_empty() {
            Vec::new()
        } else {
            vec![(String::new(), raw)]
        };
        claims.push(Claim {
            number,
            partition,
            token: first + i as u64,
            batch: first,
            attempts: 0,
            source: Source::Fresh,
            agent: None,
            attrs,
        });
    }
    for d in details.chunks(4) {
        let [i, attempts, source, agent] = d else {
            return Err(bad("details"));
        };
        let i = int(i).ok_or_else(|| bad("detail index"))? as usize;
        let c = claims
            .get_mut(i.wrapping_sub(1))
            .ok_or_else(|| bad("detail index out of range"))?;
        c.attempts = int(attempts).ok_or_else(|| bad("attempts"))? as u32;
        c.source = match text(source).as_deref() {
            Some("callback") => Source::Callback,
            Some("retry") => Source::Retry,
            _ => return Err(bad("source")),
        };
        c.agent = text(agent).filter(|a| !a.is_empty());
    }
    Ok((lists, checked, claims, interrupted))
}

/// A dialler's name as dial marks keep it: nothing the marks' `|` layout could be confused by.
pub(crate) fn check_owner(owner: &str) -> Result<()> {
    let ok = owner.len() <= 64
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "owner",
            format!("{owner:?}: at most 64 ASCII letters, digits, '-', '.', ':' or '_'"),
        ))
    }
}

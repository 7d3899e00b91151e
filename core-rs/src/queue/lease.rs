//! Renewing leases: a dialer's heartbeat for the claim batches whose calls are in progress;
//! re-asserting them after Redis lost writes; adopting a dead dialer's calls its agents still
//! have open.

use redis::Value;

use super::scripts::{ADOPT, REASSERT, RENEW};
use super::{CallQueue, Claim, Source};
use crate::error::{Error, Result};
use crate::store::{int, text};

impl CallQueue {
    /// Extend the leases of claim batches of `partition` (their
    /// [`Claim::batch`](super::Claim::batch)) to `now + lease_ms`: a dialer's heartbeat while its
    /// calls are in progress, so that leases can be short and a dead dialer's contacts come back
    /// soon. A batch already expired (or completed) is not revived; a later deadline is never
    /// shortened. Returns how many batches were extended.
    pub fn renew(
        &mut self,
        partition: u32,
        batches: &[u64],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<usize> {
        self.check_partition(partition)?;
        if batches.is_empty() {
            return Ok(0);
        }
        if lease_ms == 0 {
            return Err(Error::invalid("lease", "must be longer than 0 ms"));
        }
        let base = self.base(partition);
        let mut inv = RENEW.prepare_invoke();
        inv.key(&base).arg(now_ms).arg(now_ms + lease_ms);
        for b in batches {
            inv.arg(*b);
        }
        let reply = self.store.invoke(&inv, "renew", &base)?;
        Ok(int(&reply).unwrap_or(0).max(0) as usize)
    }
}

/// A claim a dialer still has in progress (or completed moments ago), for
/// [`CallQueue::reassert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub number: u64,
    pub token: u64,
    pub batch: u64,
    /// Attempts before this call (the claim's).
    pub attempts: u32,
    pub agent: Option<String>,
    /// Its dial mark's value after `token|`: `d[|owner]`, `a[|detail]`, or empty for none.
    pub mark: String,
}

/// How many claims one reassert script takes.
const REASSERT_CHUNK: usize = 500;

impl CallQueue {
    /// After Redis lost writes it had acknowledged (a restart from an AOF missing its last
    /// second; [`Error::Rewound`] from a claim says so), write back the leases and dial marks of
    /// the calls still in progress, so that none of their contacts is handed out again
    /// (`lua/reassert.lua`). Give it the claims completed in the last seconds too: one whose
    /// completion was lost is held again, and completing it again applies the completion (one
    /// whose completion survived answers `done`, and completing it again is `stale`). Answers,
    /// per claim, `held`, `restored`, `done` or `taken` (claimed by someone else meanwhile).
    /// Raises the partition's token sequence to this queue's floor: claims work again after it.
    pub fn reassert(
        &mut self,
        partition: u32,
        held: &[Held],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Vec<String>> {
        self.check_partition(partition)?;
        if lease_ms == 0 {
            return Err(Error::invalid("lease", "must be longer than 0 ms"));
        }
        if let Some(bad) = held.iter().find(|h| h.token < h.batch) {
            return Err(Error::invalid(
                "held",
                format!("token {} is before its batch {}", bad.token, bad.batch),
            ));
        }
        let base = self.base(partition);
        let floor = self.floor[partition as usize];
        let mut out = Vec::with_capacity(held.len());
        let chunks: Vec<&[Held]> = if held.is_empty() {
            vec![&[]]
        } else {
            held.chunks(REASSERT_CHUNK).collect()
        };
        for chunk in chunks {
            let mut inv = REASSERT.prepare_invoke();
            inv.key(&base).arg(now_ms).arg(lease_ms).arg(floor);
            for h in chunk {
                inv.arg(h.number)
                    .arg(h.token)
                    .arg(h.batch)
                    .arg(h.attempts)
                    .arg(h.agent.as_deref().unwrap_or(""))
                    .arg(&h.mark);
            }
            let reply = self.store.invoke(&inv, "reassert", &base)?;
            let Value::Array(items) = reply else {
                return Err(Error::protocol(
                    "reassert",
                    &base,
                    "expected an array".to_string(),
                ));
            };
            out.extend(items.iter().map(|v| text(v).unwrap_or_default()));
        }
        if let Some(top) = held.iter().map(|h| h.token).max() {
            let f = &mut self.floor[partition as usize];
            *f = (*f).max(top);
        }
        Ok(out)
    }
}

impl CallQueue {
    /// Keep leased, for this dialer, the calls of a dialer that died while its agents had them
    /// open (connected, or wrapping up): (number, token, detail) each, the dead dialer's token and
    /// what the new answered mark keeps (`lua/adopt.lua`). Each moves to a new token in a batch
    /// of its own, leased for `lease_ms` (renew it as any batch) and marked answered, so the dead
    /// dialer's batch expires without it; the agent's disposition completes it with the token
    /// its record has (the first one stays valid for that: `P:ad`) or the new one. `None` for a
    /// call whose lease is gone or holds another token.
    pub fn adopt(
        &mut self,
        partition: u32,
        calls: &[(u64, u64, String)],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Vec<Option<Claim>>> {
        self.check_partition(partition)?;
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        if lease_ms == 0 {
            return Err(Error::invalid("lease", "must be longer than 0 ms"));
        }
        let base = self.base(partition);
        let mut inv = ADOPT.prepare_invoke();
        inv.key(&base).arg(now_ms).arg(lease_ms);
        for (number, token, detail) in calls {
            inv.arg(*number).arg(*token).arg(detail);
        }
        let reply = self.store.invoke(&inv, "adopt", &base)?;
        let items = match reply {
            Value::Array(items) if items.len() == 3 * calls.len() => items,
            other => {
                return Err(Error::protocol(
                    "adopt",
                    &base,
                    format!("expected 3 values per call, got {other:?}"),
                ))
            }
        };
        let out: Vec<Option<Claim>> = calls
            .iter()
            .zip(items.chunks(3))
            .map(|((number, _, _), v)| {
                let token = int(&v[0]).unwrap_or(0).max(0) as u64;
                (token > 0).then(|| Claim {
                    number: *number,
                    partition,
                    token,
                    batch: token,
                    attempts: int(&v[1]).unwrap_or(0).max(0) as u32,
                    source: Source::Adopted,
                    agent: text(&v[2]).filter(|a| !a.is_empty()),
                    attrs: Vec::new(),
                })
            })
            .collect();
        if let Some(top) = out.iter().flatten().map(|c| c.token).max() {
            let f = &mut self.floor[partition as usize];
            *f = (*f).max(top);
        }
        Ok(out)
    }
}

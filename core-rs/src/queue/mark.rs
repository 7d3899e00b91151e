//! Dial marks (`lua/mark.lua`): a claimed contact is marked *dialled* before its INVITE leaves
//! and *answered* when its call is answered, so that if the dialer dies the contact's expired
//! lease is counted as what it was: an attempt (`interrupted`, retried within `max_attempts`
//! when the policy retries it), or an answered call (final: nobody who answered is called again
//! because the dialer died). A contact claimed and never dialled comes back uncounted, as before.

use super::scripts::MARK;
use super::CallQueue;
use crate::error::{Error, Result};
use crate::store::int;

/// What became of a dialled contact whose lease expired before its call was completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    pub number: u64,
    pub partition: u32,
    /// Attempts now, the interrupted one included.
    pub attempts: u32,
    /// `answered` (final), `retry`, `interrupted` (final: not retried) or `exhausted`.
    pub result: String,
}

/// A dial mark as [`CallQueue::marks`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialMark {
    pub number: u64,
    /// The lease it is for.
    pub token: u64,
    pub mark: Mark,
    /// What the dialler keeps with it: the claim's owner (dialled), the answer's detail.
    pub detail: String,
}

/// How far a claimed contact's call got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Its INVITE is leaving: from now on it is an attempt.
    Dialled,
    /// Answered: from now on it is final.
    Answered,
}

impl CallQueue {
    /// Mark these claims, (partition, number, token) each (one script per partition among them,
    /// so one round trip for a claim batch); a claim whose lease is no longer live is not
    /// marked. Returns how many were.
    pub fn mark(&mut self, claims: &[(u32, u64, u64)], mark: Mark) -> Result<usize> {
        if mark == Mark::Answered {
            return self.mark_answered(claims, &[]);
        }
        let kind = "d";
        let mut parts: Vec<u32> = claims.iter().map(|c| c.0).collect();
        parts.sort_unstable();
        parts.dedup();
        let mut marked = 0;
        for p in parts {
            self.check_partition(p)?;
            let base = self.base(p);
            let mut inv = MARK.prepare_invoke();
            inv.key(&base).arg(kind);
            for (_, number, token) in claims.iter().filter(|c| c.0 == p) {
                inv.arg(*number).arg(*token);
            }
            marked += int(&self.store.invoke(&inv, "mark claims", &base)?).unwrap_or(0) as usize;
        }
        Ok(marked)
    }

    /// Answered marks are one plain HSET each, pipelined (no script: a call is answered one at a
    /// time, and a script's call costs Redis several times an HSET). Not checked against the live
    /// lease: the call is in progress, so its lease is; a mark left behind by a call completed
    /// meanwhile names a token no later lease has, and goes with the contact's next completion.
    /// `details`, when given, is aligned with `claims`: what the dialler keeps with each mark
    /// (who it is, the dialog to end if it dies: [`marks`](Self::marks) gives it back).
    pub fn mark_answered(
        &mut self,
        claims: &[(u32, u64, u64)],
        details: &[String],
    ) -> Result<usize> {
        if !details.is_empty() && details.len() != claims.len() {
            return Err(Error::invalid(
                "details",
                format!("{} details for {} claims", details.len(), claims.len()),
            ));
        }
        let mut pipe = crate::store::pipe();
        for (i, (p, number, token)) in claims.iter().enumerate() {
            self.check_partition(*p)?;
            let value = match details.get(i) {
                Some(d) if !d.is_empty() => format!("{token}|a|{d}"),
                _ => format!("{token}|a"),
            };
            pipe.cmd("HSET")
                .arg(format!("{}:dm", self.base(*p)))
                .arg(*number)
                .arg(value)
                .ignore();
        }
        self.store
            .pipe::<()>(&pipe, "mark answered", &self.campaign)?;
        Ok(claims.len())
    }

    /// Every dial mark of `partition`: the calls of its live leases that were dialled (and maybe
    /// answered), with what their dialler keeps in each (the `owner` of the claim, an answered
    /// call's detail). One HGETALL: for a node taking a partition over, to find a dead node's
    /// calls and end them.
    pub fn marks(&mut self, partition: u32) -> Result<Vec<DialMark>> {
        self.check_partition(partition)?;
        let key = format!("{}:dm", self.base(partition));
        let all: Vec<(String, String)> =
            self.store
                .query(redis::cmd("HGETALL").arg(&key), "read dial marks", &key)?;
        let mut out: Vec<DialMark> = all
            .into_iter()
            .filter_map(|(number, value)| {
                let number = number.parse().ok()?;
                let mut parts = value.splitn(3, '|');
                let token = parts.next()?.parse().ok()?;
                let mark = match parts.next()? {
                    "d" => Mark::Dialled,
                    "a" => Mark::Answered,
                    _ => return None,
                };
                let detail = parts.next().unwrap_or("").to_string();
                Some(DialMark {
                    number,
                    token,
                    mark,
                    detail,
                })
            })
            .collect();
        out.sort_by_key(|m| m.token);
        Ok(out)
    }

    /// End now the leases of the claim batches holding these `tokens` (of `partition`): the
    /// next claim finds them expired and counts their contacts by their marks. For a node that
    /// has ended a dead node's calls: their contacts are accounted for at once, not when the
    /// dead node's leases would have run out. Returns how many batches were ended.
    pub fn expire_leases(&mut self, partition: u32, tokens: &[u64]) -> Result<usize> {
        self.check_partition(partition)?;
        if tokens.is_empty() {
            return Ok(0);
        }
        let key = format!("{}:lb", self.base(partition));
        let firsts: Vec<String> =
            self.store
                .query(redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1), "read lease batches", &key)?;
        let mut firsts: Vec<u64> = firsts.iter().filter_map(|f| f.parse().ok()).collect();
        firsts.sort_unstable();
        // A batch is the run of tokens from its first to the next batch's first.
        let mut ended: Vec<u64> = tokens
            .iter()
            .filter_map(|t| firsts.iter().rev().find(|f| *f <= t).copied())
            .collect();
        ended.sort_unstable();
        ended.dedup();
        let mut pipe = crate::store::pipe();
        for first in &ended {
            pipe.cmd("ZADD").arg(&key).arg("XX").arg(0).arg(*first).ignore();
        }
        self.store.pipe::<()>(&pipe, "end lease batches", &key)?;
        Ok(ended.len())
    }

    /// The dialled contacts whose expired leases the claims since the last call found.
    pub fn take_interrupted(&mut self) -> Vec<Interrupted> {
        std::mem::take(&mut self.interrupted)
    }
}

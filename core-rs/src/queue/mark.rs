//! Dial marks (`lua/mark.lua`): a claimed contact is marked *dialled* before its INVITE leaves
//! and *answered* when its call is answered, so that if the dialer dies the contact's expired
//! lease is counted as what it was: an attempt (`interrupted`, retried within `max_attempts`
//! when the policy retries it), or an answered call (final: nobody who answered is called again
//! because the dialer died). A contact claimed and never dialled comes back uncounted, as before.

use super::scripts::MARK;
use super::CallQueue;
use crate::error::Result;
use crate::keys;
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
            return self.mark_answered(claims);
        }
        let kind = "d";
        let mut parts: Vec<u32> = claims.iter().map(|c| c.0).collect();
        parts.sort_unstable();
        parts.dedup();
        let mut marked = 0;
        for p in parts {
            self.check_partition(p)?;
            let base = keys::partition(&self.campaign, p);
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
    fn mark_answered(&mut self, claims: &[(u32, u64, u64)]) -> Result<usize> {
        let mut pipe = redis::pipe();
        for (p, number, token) in claims {
            self.check_partition(*p)?;
            pipe.cmd("HSET")
                .arg(format!("{}:dm", keys::partition(&self.campaign, *p)))
                .arg(*number)
                .arg(format!("{token}|a"))
                .ignore();
        }
        self.store
            .pipe::<()>(&pipe, "mark answered", &self.campaign)?;
        Ok(claims.len())
    }

    /// The dialled contacts whose expired leases the claims since the last call found.
    pub fn take_interrupted(&mut self) -> Vec<Interrupted> {
        std::mem::take(&mut self.interrupted)
    }
}

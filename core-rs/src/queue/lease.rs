//! Renewing leases: a dialer's heartbeat for the claim batches whose calls are in progress.

use super::scripts::RENEW;
use super::CallQueue;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::int;

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
        let base = keys::partition(&self.campaign, partition);
        let mut inv = RENEW.prepare_invoke();
        inv.key(&base).arg(now_ms).arg(now_ms + lease_ms);
        for b in batches {
            inv.arg(*b);
        }
        let reply = self.store.invoke(&inv, "renew", &base)?;
        Ok(int(&reply).unwrap_or(0).max(0) as usize)
    }
}

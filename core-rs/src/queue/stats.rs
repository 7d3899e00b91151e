//! Queue depth and counters, summed over partitions.

use redis::Value;

use super::CallQueue;
use crate::error::{Error, Result};

/// Queue depth and counters, summed over partitions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub partitions: u32,
    pub ready: u64,
    pub retry_waiting: u64,
    pub retry_due: u64,
    pub callbacks_waiting: u64,
    pub callbacks_due: u64,
    pub leased: u64,
    /// Claim batches past their deadline, returned to the queue by the next claim.
    pub lease_batches_overdue: u64,
    /// Counters from the scripts (imported, claimed, final, retry, outcome:<name> ...).
    pub counters: Vec<(String, u64)>,
}

impl CallQueue {
    /// Depth of every queue and the counters, summed over partitions.
    pub fn stats(&mut self, now_ms: u64) -> Result<QueueStats> {
        let mut pipe = crate::store::pipe();
        for p in 0..self.partitions {
            let b = self.base(p);
            pipe.cmd("LLEN").arg(format!("{b}:ready"));
            pipe.cmd("ZCARD").arg(format!("{b}:retry"));
            pipe.cmd("ZCOUNT")
                .arg(format!("{b}:retry"))
                .arg("-inf")
                .arg(now_ms);
            pipe.cmd("ZCARD").arg(format!("{b}:cb"));
            pipe.cmd("ZCOUNT")
                .arg(format!("{b}:cb"))
                .arg("-inf")
                .arg(now_ms);
            pipe.cmd("HLEN").arg(format!("{b}:lh"));
            pipe.cmd("ZCOUNT")
                .arg(format!("{b}:lb"))
                .arg("-inf")
                .arg(now_ms);
            pipe.cmd("HGETALL").arg(format!("{b}:stat"));
        }
        type Row = (u64, u64, u64, u64, u64, u64, u64, Vec<(String, u64)>);
        let rows: Vec<Value> = self.store.pipe(&pipe, "stats", &self.campaign)?;
        let mut s = QueueStats {
            partitions: self.partitions,
            ..Default::default()
        };
        let mut counters: std::collections::BTreeMap<String, u64> = Default::default();
        for chunk in rows.chunks(8) {
            let row: Row = redis::FromRedisValue::from_redis_value(Value::Array(chunk.to_vec()))
                .map_err(|e| Error::protocol("stats", &self.campaign, e.to_string()))?;
            s.ready += row.0;
            s.retry_waiting += row.1 - row.2;
            s.retry_due += row.2;
            s.callbacks_waiting += row.3 - row.4;
            s.callbacks_due += row.4;
            s.leased += row.5;
            s.lease_batches_overdue += row.6;
            for (k, v) in row.7 {
                *counters.entry(k).or_default() += v;
            }
        }
        s.counters = counters.into_iter().collect();
        Ok(s)
    }
}

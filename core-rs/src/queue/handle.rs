//! [`CallQueue`], the handle on one campaign's queue: opening it fixes (or reads) the campaign's
//! partition count and loads the scripts. Each transition is in a module of its own (claim,
//! complete, mark, lease, suppression, stats, contact, listing).

use super::mark::Interrupted;
use super::policy::OutcomePolicy;
use super::scripts::{CLAIM, COMPLETE, IMPORT, MARK, REASSERT};
use crate::error::{Error, Result};
use crate::keys;
use crate::store::Store;

pub struct CallQueue {
    pub(super) store: Store,
    pub(super) campaign: String,
    pub(super) partitions: u32,
    pub(super) policy: OutcomePolicy,
    /// Dialled contacts whose leases the claims found expired (the dialer died or lost them),
    /// until [`CallQueue::take_interrupted`].
    pub(super) interrupted: Vec<Interrupted>,
    /// Per partition, the highest token this queue's claims handed out: a claim is refused
    /// ([`Error::Rewound`]) while the partition's sequence is behind it (Redis lost writes).
    pub(super) floor: Vec<u64>,
    /// Each partition's key base (`keys::partition`), worked out once.
    bases: Vec<String>,
}

impl CallQueue {
    /// Open campaign `campaign`'s queue. `partitions` is fixed when the campaign is first given
    /// one (or first imported into); `None` takes the stored count. Opening an unknown campaign
    /// with `None` writes nothing: it reads as an empty queue of one partition.
    pub fn open(
        url: &str,
        campaign: &str,
        partitions: Option<u32>,
        policy: OutcomePolicy,
    ) -> Result<Self> {
        Self::open_with(url, campaign, partitions, policy, partitions.is_some())
    }

    /// Open the queue for loading contacts: the campaign's partition count is recorded (1 when
    /// `partitions` is `None` and the campaign is new).
    pub fn create(
        url: &str,
        campaign: &str,
        partitions: Option<u32>,
        policy: OutcomePolicy,
    ) -> Result<Self> {
        Self::open_with(url, campaign, partitions, policy, true)
    }

    fn open_with(
        url: &str,
        campaign: &str,
        partitions: Option<u32>,
        policy: OutcomePolicy,
        record: bool,
    ) -> Result<Self> {
        keys::check_name("campaign id", campaign)?;
        let mut store = Store::connect(url)?;
        let partitions = ensure_partitions(&mut store, campaign, partitions, record)?;
        store.load_scripts(&[&CLAIM, &COMPLETE, &IMPORT, &MARK, &REASSERT])?;
        Ok(CallQueue {
            store,
            campaign: campaign.to_string(),
            partitions,
            policy,
            interrupted: Vec::new(),
            floor: vec![0; partitions as usize],
            bases: (0..partitions).map(|p| keys::partition(campaign, p, partitions)).collect(),
        })
    }

    /// Whether the campaign is known to Redis (it has been given a partition count).
    pub fn exists(&mut self) -> Result<bool> {
        let key = keys::campaign_meta(&self.campaign);
        self.store.query(
            redis::cmd("HEXISTS").arg(&key).arg("partitions"),
            "read campaign",
            &key,
        )
    }

    pub fn campaign(&self) -> &str {
        &self.campaign
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The base of `partition`'s keys (`keys::partition`).
    pub(crate) fn base(&self, partition: u32) -> String {
        match self.bases.get(partition as usize) {
            Some(b) => b.clone(),
            None => keys::partition(&self.campaign, partition, self.partitions),
        }
    }

    pub fn policy(&self) -> &OutcomePolicy {
        &self.policy
    }

    pub fn set_policy(&mut self, policy: OutcomePolicy) {
        self.policy = policy;
    }

    pub(crate) fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    pub(super) fn check_partition(&self, partition: u32) -> Result<()> {
        if partition >= self.partitions {
            return Err(Error::invalid(
                "partition",
                format!(
                    "{partition}: campaign {:?} has partitions 0..{}",
                    self.campaign, self.partitions
                ),
            ));
        }
        Ok(())
    }
}

/// Read the campaign's partition count, and with `record` fix it if it is not yet.
fn ensure_partitions(
    store: &mut Store,
    campaign: &str,
    asked: Option<u32>,
    record: bool,
) -> Result<u32> {
    if let Some(0) = asked {
        return Err(Error::invalid("partitions", "must be at least 1"));
    }
    let key = keys::campaign_meta(campaign);
    if !record {
        let stored: Option<u32> = store.query(
            redis::cmd("HGET").arg(&key).arg("partitions"),
            "read partitions",
            &key,
        )?;
        return Ok(stored.unwrap_or(1));
    }
    let want = asked.unwrap_or(1);
    // HSETNX then HGET: the first opener fixes the count; later ones must agree.
    let mut pipe = crate::store::pipe();
    pipe.cmd("HSETNX")
        .arg(&key)
        .arg("partitions")
        .arg(want)
        .ignore();
    pipe.cmd("HGET").arg(&key).arg("partitions");
    let (stored,): (u32,) = store.pipe(&pipe, "read partitions", &key)?;
    match asked {
        Some(a) if a != stored => Err(Error::PartitionMismatch {
            campaign: campaign.to_string(),
            stored,
            asked: a,
        }),
        _ => Ok(stored),
    }
}

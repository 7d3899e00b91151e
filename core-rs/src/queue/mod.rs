//! The call queue: contacts of one campaign, spread over partitions, move
//! ready -> claimed (a lease with a deadline and a token) -> completed with an outcome.
//!
//! Every transition is one Lua script on the partition's keys (see `lua/`), so concurrent
//! claimers in many processes never see a contact twice and never lose one. Layout of partition
//! `P = {c:<campaign>:p<n>}`:
//!
//! | key            | type  | holds                                                          |
//! |----------------|-------|----------------------------------------------------------------|
//! | `P:ready`      | list  | fresh contacts (E.164 digits as integers), file order          |
//! | `P:retry`      | zset  | due time (ms) of retries, do-not-call-back ends, expired leases |
//! | `P:cb`         | zset  | due time of callbacks (reserved for an agent)                   |
//! | `P:lh`         | hash  | number -> `token|attempts|agent[|ref]` of each live lease       |
//! | `P:lb`         | zset  | first token of each claim batch -> its lease deadline           |
//! | `P:lb:<first>` | list  | the numbers of that batch (read when its deadline passes)       |
//! | `P:k:<bucket>` | hash  | number -> state `S|attempts|ref|time|outcome|agent` ("" or `@ref` = fresh); written when a call completes, so a claim of a fresh contact costs no per-contact write |
//! | `P:ap:<page>`  | string| attributes of the contacts of one import batch, one after the other: `cols-id \x1f v1 \x1f v2 ...` |
//! | `P:apseq`      | int   | attribute page sequence (present: the partition holds attributes) |
//! | `P:cols`       | hash  | cols-id -> attribute column names                               |
//! | `P:meta`       | hash  | `suppression`: the lists checked at claim time                  |
//! | `P:stat`       | hash  | counters: imported, claimed, final, retry, outcome:<name> ...   |
//! | `P:seq`        | int   | lease token sequence                                           |
//!
//! A number is packed as the integer of its E.164 digits, which Redis stores in 8 bytes inside
//! list and hash encodings; buckets (`number mod BUCKETS`) keep the state hashes small enough for
//! Redis's compact listpack encoding.
//!
//! A contact's attributes are written once, at import, in the page of its batch; `ref` =
//! `page.offset.length` finds them (GETRANGE) and `0` says there are none. The ref travels from the
//! fresh state (`@ref`) through the lease into every later state, so an import costs one write per
//! contact with attributes or without.

mod listing;
pub mod policy;

use std::sync::LazyLock;

use redis::{Script, Value};

use crate::contacts::suppression;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::{int, text, Store};
pub use listing::{ContactPage, STATES};
pub use policy::{Action, Completion, OutcomePolicy};

pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/claim.lua")));
pub(crate) static COMPLETE: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/complete.lua")));
/// KEYS[1] = partition base. ARGV: now_ms, new deadline, batch first tokens. A batch whose
/// deadline already passed is left for the next claim to expire.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local LB = KEYS[1] .. ':lb'
local now, deadline, n = tonumber(ARGV[1]), ARGV[2], 0
for i = 3, #ARGV do
  local cur = redis.call('ZSCORE', LB, ARGV[i])
  if cur and tonumber(cur) > now and tonumber(cur) < tonumber(deadline) then
    redis.call('ZADD', LB, 'XX', deadline, ARGV[i])
    n = n + 1
  end
end
return n
",
    )
});
pub(crate) static IMPORT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/import.lua")));

/// A script with the constants it shares with this crate filled in (`@BUCKETS@`, `@LIST_BUCKETS@`).
pub(crate) fn script(source: &str) -> Script {
    Script::new(
        &source
            .replace("@BUCKETS@", &keys::BUCKETS.to_string())
            .replace("@LIST_BUCKETS@", &keys::LIST_BUCKETS.to_string()),
    )
}

/// How many expired leases one claim moves back to the queue at most.
const EXPIRED_SCAN: u32 = 1000;

/// Where a claimed contact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Callback,
    Retry,
    Fresh,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Callback => "callback",
            Source::Retry => "retry",
            Source::Fresh => "fresh",
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

/// A contact's state, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactState {
    pub number: u64,
    pub state: &'static str,
    pub attempts: u32,
    /// Lease deadline, due time, callback time or do-not-call-back end, or the time it finished.
    pub time_ms: Option<u64>,
    pub last_outcome: Option<String>,
    pub agent: Option<String>,
    pub attrs: Vec<(String, String)>,
    /// Where its attributes are (read into `attrs` by the listings).
    pub(crate) attr_ref: Option<AttrRef>,
}

/// Where a contact's attributes are: `len` bytes at `off` of the string `P:ap:<page>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttrRef {
    page: u64,
    off: u64,
    len: u64,
}

impl AttrRef {
    /// `page.offset.length`; `0` (no attributes) and anything else is `None`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let mut f = s.split('.');
        let mut next = || f.next().and_then(|x| x.parse::<u64>().ok());
        let r = AttrRef {
            page: next()?,
            off: next()?,
            len: next()?,
        };
        (f.next().is_none() && r.len > 0).then_some(r)
    }

    /// The command that reads the raw `cols-id \x1f v1 \x1f v2` string.
    pub(crate) fn read(&self, base: &str) -> redis::Cmd {
        let mut c = redis::cmd("GETRANGE");
        c.arg(format!("{base}:ap:{}", self.page))
            .arg(self.off)
            .arg(self.off + self.len - 1);
        c
    }
}

pub struct CallQueue {
    store: Store,
    campaign: String,
    partitions: u32,
    policy: OutcomePolicy,
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
        store.load_scripts(&[&CLAIM, &COMPLETE, &IMPORT])?;
        Ok(CallQueue {
            store,
            campaign: campaign.to_string(),
            partitions,
            policy,
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

    pub fn policy(&self) -> &OutcomePolicy {
        &self.policy
    }

    pub fn set_policy(&mut self, policy: OutcomePolicy) {
        self.policy = policy;
    }

    pub(crate) fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    fn check_partition(&self, partition: u32) -> Result<()> {
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
        self.check_partition(partition)?;
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
        let base = keys::partition(&self.campaign, partition);
        let mut inv = CLAIM.prepare_invoke();
        inv.key(&base)
            .arg(now_ms)
            .arg(n)
            .arg(lease_ms)
            .arg(u8::from(with_attrs))
            .arg(EXPIRED_SCAN)
            .arg(&cb_agents);
        let reply = self.store.invoke(&inv, "claim", &base)?;
        let (lists, checked, mut claims) = parse_claims(&reply, partition, &base)?;
        if with_attrs {
            let mut all: Vec<_> = claims.iter_mut().map(|c| &mut c.attrs).collect();
            self.resolve_attrs(&base, &mut all)?;
        }
        if lists.is_empty() || claims.is_empty() {
            return Ok(claims);
        }
        // Every contact was checked at import against each list's version then; while no list
        // has changed since, there is nothing new to find.
        let now: Vec<String> = suppression::versions(&mut self.store, &lists)?
            .iter()
            .map(u64::to_string)
            .collect();
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

    /// Extend the leases of claim batches of `partition` (their [`Claim::batch`]) to `now + lease_ms`:
    /// a dialer's heartbeat while its calls are in progress, so that leases can be short and a
    /// dead dialer's contacts come back soon. A batch already expired (or completed) is not
    /// revived; a later deadline is never shortened. Returns how many batches were extended.
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
        let base = keys::partition(&self.campaign, partition);
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

    /// Suppression lists checked at claim time (stored with the campaign, in every partition).
    /// A list added here was never checked against the contacts already queued, so claims check
    /// it until the campaign's next full import says otherwise.
    pub fn set_suppression_lists(&mut self, lists: &[String]) -> Result<()> {
        let (old, checked) = self.suppression_state()?;
        let checked: Vec<String> = lists
            .iter()
            .map(|l| {
                old.iter()
                    .position(|o| o == l)
                    .and_then(|i| checked.get(i).cloned())
                    .unwrap_or_else(|| "x".to_string())
            })
            .collect();
        self.record_suppression(lists, &checked)
    }

    /// The lists and, per list, the version all queued contacts were checked against ("x": not
    /// all of them were).
    pub(crate) fn suppression_state(&mut self) -> Result<(Vec<String>, Vec<String>)> {
        let key = format!("{}:meta", keys::partition(&self.campaign, 0));
        let (lists, checked): (Option<String>, Option<String>) = self.store.query(
            redis::cmd("HMGET")
                .arg(&key)
                .arg("suppression")
                .arg("supver"),
            "read suppression lists",
            &key,
        )?;
        let split = |s: Option<String>| {
            s.unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        Ok((split(lists), split(checked)))
    }

    pub(crate) fn record_suppression(
        &mut self,
        lists: &[String],
        checked: &[String],
    ) -> Result<()> {
        for l in lists {
            keys::check_name("suppression list", l)?;
        }
        let mut pipe = redis::pipe();
        for p in 0..self.partitions {
            pipe.cmd("HSET")
                .arg(format!("{}:meta", keys::partition(&self.campaign, p)))
                .arg("suppression")
                .arg(lists.join(","))
                .arg("supver")
                .arg(checked.join(","))
                .ignore();
        }
        self.store
            .pipe::<()>(&pipe, "set suppression lists", &self.campaign)
    }

    pub fn suppression_lists(&mut self) -> Result<Vec<String>> {
        Ok(self.suppression_state()?.0)
    }

    /// Depth of every queue and the counters, summed over partitions.
    pub fn stats(&mut self, now_ms: u64) -> Result<QueueStats> {
        let mut pipe = redis::pipe();
        for p in 0..self.partitions {
            let b = keys::partition(&self.campaign, p);
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

    /// One contact's state, or `None` when the number is not in this campaign.
    pub fn contact(&mut self, number: u64) -> Result<Option<ContactState>> {
        let p = keys::partition_of(number, self.partitions);
        let base = keys::partition(&self.campaign, p);
        let bucket = number % keys::BUCKETS;
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(format!("{base}:k:{bucket}"))
            .arg(number);
        pipe.cmd("HGET").arg(format!("{base}:lh")).arg(number);
        type Reply = (Option<String>, Option<String>);
        let (st, lease): Reply = self.store.pipe(&pipe, "read contact", &base)?;
        let Some(st) = st else { return Ok(None) };
        let mut c = parse_state(number, &st)
            .ok_or_else(|| Error::protocol("read contact", &base, format!("bad state {st:?}")))?;
        if let Some(lease) = lease {
            apply_lease(&mut c, &lease);
        }
        if let Some(r) = c.attr_ref {
            let raw: String = self
                .store
                .query(&mut r.read(&base), "read contact", &base)?;
            c.attrs = vec![(String::new(), raw)];
            self.resolve_attrs(&base, &mut [&mut c.attrs])?;
        }
        Ok(Some(c))
    }

    /// Turn raw `cols-id \x1f v1 \x1f v2` attribute strings (each held alone as `attrs[0].1`, as
    /// the scripts return them) into (column, value) pairs.
    fn resolve_attrs(&mut self, base: &str, all: &mut [&mut Vec<(String, String)>]) -> Result<()> {
        let mut ids: Vec<String> = all
            .iter()
            .filter_map(|a| {
                a.first()
                    .and_then(|(_, raw)| raw.split('\x1f').next())
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let cols_key = format!("{base}:cols");
        let names: Vec<Option<String>> = self.store.query(
            redis::cmd("HMGET").arg(&cols_key).arg(&ids),
            "read attribute columns",
            &cols_key,
        )?;
        let table: Vec<(String, Vec<String>)> = ids
            .into_iter()
            .zip(names)
            .map(|(id, n)| {
                (
                    id,
                    n.unwrap_or_default()
                        .split('\x1f')
                        .map(str::to_string)
                        .collect(),
                )
            })
            .collect();
        for attrs in all.iter_mut() {
            let Some((_, raw)) = attrs.pop() else {
                continue;
            };
            let mut parts = raw.split('\x1f');
            let id = parts.next().unwrap_or("");
            let cols = table
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, c)| c.as_slice())
                .unwrap_or(&[]);
            **attrs = parts
                .enumerate()
                .map(|(i, v)| {
                    (
                        cols.get(i).cloned().unwrap_or_else(|| format!("col{i}")),
                        v.to_string(),
                    )
                })
                .collect();
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
    let mut pipe = redis::pipe();
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

type Parsed = (Vec<String>, Vec<String>, Vec<Claim>);

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
    Ok((lists, checked, claims))
}

/// A claimed contact: its lease (`token|attempts|agent[|ref]`) holds the attempts so far and the
/// agent of a callback.
fn apply_lease(c: &mut ContactState, lease: &str) {
    let mut f = lease.splitn(4, '|');
    let _token = f.next();
    c.state = "claimed";
    c.attempts = f.next().and_then(|a| a.parse().ok()).unwrap_or(c.attempts);
    c.agent = f.next().filter(|a| !a.is_empty()).map(str::to_string);
    c.time_ms = None;
    if let Some(r) = f.next().and_then(AttrRef::parse) {
        c.attr_ref = Some(r);
    }
}

fn parse_state(number: u64, st: &str) -> Option<ContactState> {
    if st.is_empty() || st.starts_with('@') {
        return Some(ContactState {
            number,
            state: "ready",
            attempts: 0,
            time_ms: None,
            last_outcome: None,
            agent: None,
            attrs: Vec::new(),
            attr_ref: st.get(1..).and_then(AttrRef::parse),
        });
    }
    let mut f = st.splitn(6, '|');
    let state = match f.next()? {
        "C" => "claimed",
        "W" => "waiting_retry",
        "B" => "callback",
        "N" => "do_not_call_back",
        "D" => "done",
        _ => return None,
    };
    let attempts = f.next()?.parse().ok()?;
    let attr_ref = AttrRef::parse(f.next()?);
    let time_ms = f.next()?.parse().ok();
    let outcome = f.next().filter(|s| !s.is_empty()).map(str::to_string);
    let agent = f.next().filter(|s| !s.is_empty()).map(str::to_string);
    Some(ContactState {
        number,
        state,
        attempts,
        time_ms,
        last_outcome: outcome,
        agent,
        attrs: Vec::new(),
        attr_ref,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse() {
        let c = parse_state(1, "B|1|0|1700000000000|no_answer|alice").unwrap();
        assert_eq!(c.state, "callback");
        assert_eq!(c.attempts, 1);
        assert_eq!(c.time_ms, Some(1_700_000_000_000));
        assert_eq!(c.agent.as_deref(), Some("alice"));
        assert_eq!(parse_state(1, "").unwrap().state, "ready");
        assert!(parse_state(1, "X|1|0|0||").is_none());
    }

    #[test]
    fn completion_results_parse() {
        assert_eq!(Completed::parse("retry"), Some(Completed::Retry));
        assert_eq!(Completed::parse("stale:D"), Some(Completed::Stale('D')));
        assert_eq!(Completed::parse("nonsense"), None);
    }
}

//! Paging through a campaign's contacts (for the customer list and exports): bucket by bucket
//! over the state hashes, with an opaque cursor `partition.bucket.offset`.
//!
//! A page reads a growing window of bucket hashes a round trip (8, 32, ... up to 1024), so a
//! dense campaign reads about what it returns and a sparse one still pages quickly. An import running while someone pages may make a page show a contact twice or not at
//! all (Redis may reorder a growing bucket); states are read as they are at the moment.

use std::collections::HashMap;

use redis::Value;

use super::contact::{apply_lease, parse_state};
use super::{CallQueue, ContactState};
use crate::error::{Error, Result};
use crate::keys;
use crate::store::text;

/// Bucket hashes read a round trip: a page starts with a few (a dense campaign fills a page from
/// a handful of buckets) and widens the window while it finds too little (a sparse one).
const FIRST_WINDOW: u64 = 8;
const MAX_WINDOW: u64 = 1024;

/// The states a listing can filter on.
pub const STATES: &[&str] = &[
    "ready",
    "claimed",
    "waiting_retry",
    "callback",
    "do_not_call_back",
    "done",
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactPage {
    pub contacts: Vec<ContactState>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
}

impl CallQueue {
    /// Up to `count` contacts from `cursor` (`None`: the beginning), only those in `state` when
    /// given (one of [`STATES`]).
    pub fn contacts(
        &mut self,
        state: Option<&str>,
        cursor: Option<&str>,
        count: usize,
    ) -> Result<ContactPage> {
        if let Some(s) = state {
            if !STATES.contains(&s) {
                return Err(Error::invalid(
                    "state",
                    format!("{s:?}: use one of {}", STATES.join(", ")),
                ));
            }
        }
        if count == 0 || count > 10_000 {
            return Err(Error::invalid("count", format!("{count}: use 1 to 10000")));
        }
        let (mut p, mut b, mut skip) = parse_cursor(cursor, self.partitions)?;
        let mut page = ContactPage::default();
        let mut window = FIRST_WINDOW;
        while p < self.partitions {
            let base = self.base(p);
            let end = (b + window).min(keys::BUCKETS);
            window = (window * 4).min(MAX_WINDOW);
            let mut pipe = crate::store::pipe();
            for i in b..end {
                pipe.cmd("HGETALL").arg(format!("{base}:k:{i}"));
            }
            let buckets: Vec<Vec<(u64, String)>> =
                self.store.pipe(&pipe, "list contacts", &base)?;
            // Which of them hold a lease: only those not done can.
            let open: Vec<u64> = buckets
                .iter()
                .flatten()
                .filter(|(_, st)| !st.starts_with('D'))
                .map(|(n, _)| *n)
                .collect();
            let leases: Vec<Option<String>> = if open.is_empty() {
                Vec::new()
            } else {
                self.store.query(
                    redis::cmd("HMGET").arg(format!("{base}:lh")).arg(&open),
                    "list contacts",
                    &base,
                )?
            };
            // By number: a window holds up to hundreds of thousands of open contacts (looking
            // each one up in the list was quadratic).
            let lease_by: HashMap<u64, String> = open
                .iter()
                .zip(leases)
                .filter_map(|(n, l)| l.map(|l| (*n, l)))
                .collect();
            let lease_of = |n: u64| lease_by.get(&n);
            let mut taken: Vec<ContactState> = Vec::new();
            for (k, entries) in buckets.iter().enumerate() {
                let bucket = b + k as u64;
                for (idx, (n, st)) in entries
                    .iter()
                    .enumerate()
                    .skip(if k == 0 { skip } else { 0 })
                {
                    if page.contacts.len() + taken.len() == count {
                        page.next = Some(format!("{p}.{bucket}.{idx}"));
                        break;
                    }
                    let mut c = parse_state(*n, st).ok_or_else(|| {
                        Error::protocol("list contacts", &base, format!("bad state {st:?}"))
                    })?;
                    if let Some(lease) = lease_of(*n) {
                        apply_lease(&mut c, lease);
                    }
                    if state.is_none_or(|s| s == c.state) {
                        taken.push(c);
                    }
                }
                if page.next.is_some() {
                    break;
                }
            }
            self.attach_attrs(&base, &mut taken)?;
            page.contacts.append(&mut taken);
            if page.next.is_some() {
                return Ok(page);
            }
            (b, skip) = (end, 0);
            if b >= keys::BUCKETS {
                (p, b) = (p + 1, 0);
            }
            if page.contacts.len() == count && p < self.partitions {
                page.next = Some(format!("{p}.{b}.0"));
                return Ok(page);
            }
        }
        Ok(page)
    }

    fn attach_attrs(&mut self, base: &str, taken: &mut [ContactState]) -> Result<()> {
        if taken.is_empty() {
            return Ok(());
        }
        let mut pipe = crate::store::pipe();
        for c in taken.iter() {
            if let Some(r) = c.attr_ref {
                pipe.add_command(r.read(base));
            }
        }
        if pipe.is_empty() {
            return Ok(());
        }
        let mut raws = self
            .store
            .pipe::<Vec<Value>>(&pipe, "list contacts", base)?
            .into_iter();
        let mut all: Vec<&mut Vec<(String, String)>> = Vec::new();
        for c in taken.iter_mut().filter(|c| c.attr_ref.is_some()) {
            if let Some(r) = raws.next().as_ref().and_then(text) {
                c.attrs = vec![(String::new(), r)];
                all.push(&mut c.attrs);
            }
        }
        self.resolve_attrs(base, &mut all)
    }
}

fn parse_cursor(cursor: Option<&str>, partitions: u32) -> Result<(u32, u64, usize)> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else {
        return Ok((0, 0, 0));
    };
    let bad = || {
        Error::invalid(
            "cursor",
            format!("{c:?}: pass back the `next` of the previous page"),
        )
    };
    let mut f = c.split('.');
    let p: u32 = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let b: u64 = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let o: usize = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    if f.next().is_some() || p >= partitions || b >= keys::BUCKETS {
        return Err(bad());
    }
    Ok((p, b, o))
}

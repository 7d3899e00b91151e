//! One contact's state: its state string (`S|attempts|ref|time|outcome|agent`), its lease, and
//! its attributes (read from the page of its import batch).

use super::CallQueue;
use crate::error::{Error, Result};
use crate::keys;

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

impl CallQueue {
    /// One contact's state, or `None` when the number is not in this campaign.
    pub fn contact(&mut self, number: u64) -> Result<Option<ContactState>> {
        let p = keys::partition_of(number, self.partitions);
        let base = self.base(p);
        let bucket = number % keys::BUCKETS;
        let mut pipe = crate::store::pipe();
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
    pub(super) fn resolve_attrs(
        &mut self,
        base: &str,
        all: &mut [&mut Vec<(String, String)>],
    ) -> Result<()> {
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

/// A claimed contact: its lease (`token|attempts|agent[|ref]`) holds the attempts so far and the
/// agent of a callback.
pub(super) fn apply_lease(c: &mut ContactState, lease: &str) {
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

pub(super) fn parse_state(number: u64, st: &str) -> Option<ContactState> {
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
}

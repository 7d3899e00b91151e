//! The suppression lists a campaign's claims check, and the list versions its queued contacts
//! were last checked against.

use super::CallQueue;
use crate::error::Result;
use crate::keys;

impl CallQueue {
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
        let key = format!("{}:meta", self.base(0));
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
        let mut pipe = crate::store::pipe();
        for p in 0..self.partitions {
            pipe.cmd("HSET")
                .arg(format!("{}:meta", self.base(p)))
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
}

//! Redis key names. Every key of one campaign partition shares the hash tag `{c:<id>:p<n>}` and
//! every key of one suppression list shares `{s:<name>}`, so each Lua script touches one slot and
//! the same code runs on one Redis or a Redis Cluster.

use crate::error::{Error, Result};

/// Campaign-wide facts (partition count): `{c:<id>}:meta`.
pub fn campaign_meta(campaign: &str) -> String {
    format!("{{c:{campaign}}}:meta")
}

/// The base of one partition's keys: `{c:<id>:p<n>}`; the scripts append `:ready`, `:retry`, ...
pub fn partition(campaign: &str, partition: u32) -> String {
    format!("{{c:{campaign}:p{partition}}}")
}

/// The base of one suppression list's keys: `{s:<name>}`.
pub fn suppression_list(name: &str) -> String {
    format!("{{s:{name}}}")
}

/// The set of suppression list names.
pub const SUPPRESSION_REGISTRY: &str = "dialer:suppression-lists";

/// State and attribute buckets per partition (filled into the scripts as `@BUCKETS@`). Up to
/// about 16M contacts a partition (128 a bucket) the bucket hashes keep Redis's compact listpack
/// encoding; past that, Redis converts them to hash tables and memory per contact roughly doubles,
/// so a campaign that large takes several partitions.
pub const BUCKETS: u64 = 131_072;

/// Integer-set buckets per suppression list (`@LIST_BUCKETS@`): up to 512 numbers a bucket stay
/// an intset (8 bytes a number), so about 33M numbers a list.
pub const LIST_BUCKETS: u64 = 65_536;

/// Which partition of `partitions` holds `number` (a multiplicative hash: numbers that differ
/// only in their high digits still spread evenly).
pub fn partition_of(number: u64, partitions: u32) -> u32 {
    let h = number.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) % u64::from(partitions.max(1))) as u32
}

/// Campaign ids, list names and agent ids: 1-64 of `[A-Za-z0-9_.@-]` (they go into key names and
/// into the `|`-separated contact state).
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{name:?}: use 1 to 64 characters from A-Z a-z 0-9 _ . @ -"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_partition_share_one_hash_tag() {
        assert_eq!(partition("42", 3), "{c:42:p3}");
        assert_eq!(campaign_meta("42"), "{c:42}:meta");
        assert_eq!(suppression_list("dnc"), "{s:dnc}");
    }

    #[test]
    fn partitions_spread_evenly() {
        let mut counts = [0u32; 4];
        for n in 84_900_000_000u64..84_900_040_000 {
            counts[partition_of(n, 4) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(partition_of(84_901_234_567, 1), 0);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("campaign id", "spring-2026_v1").is_ok());
        assert!(check_name("campaign id", "").is_err());
        assert!(check_name("campaign id", "a|b").is_err());
        assert!(check_name("campaign id", "a}b").is_err());
    }
}

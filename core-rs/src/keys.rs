//! Redis key names. Every key of one campaign partition shares one hash tag (`partition`) and
//! every key of one suppression list shares `{s:<name>}`, so each Lua script touches one slot and
//! the same code runs on one Redis or a Redis Cluster.

use crate::error::{Error, Result};

/// Campaign-wide facts (partition count): `{c:<id>}:meta`.
pub fn campaign_meta(campaign: &str) -> String {
    format!("{{c:{campaign}}}:meta")
}

/// The base of one partition's keys (the scripts append `:ready`, `:retry`, ...) in a campaign of
/// `partitions`: `{c:<id>:p<n>}`, or `{c:<id>:p<n>:<s>}` with the smallest `s` that puts it in
/// the n-th of `partitions` equal ranges of the cluster's 16,384 slots. So a campaign's
/// partitions are spread evenly over a cluster's primaries (which `redis-cli --cluster create`
/// gives equal ranges of slots) when `partitions` is a multiple of the primaries. The plain name
/// alone would not do: CRC16 is linear, so the tags `...:p0` to `...:p9` land on slots a fixed
/// pattern apart, and 6 partitions on 6 primaries always left a primary without any.
/// A one-partition campaign's base is always the plain name.
pub fn partition(campaign: &str, partition: u32, partitions: u32) -> String {
    let plain = format!("c:{campaign}:p{partition}");
    let n = partitions.max(1);
    let in_range = |tag: &str| u32::from(slot(tag.as_bytes())) * n / SLOTS == partition;
    if n == 1 || partition >= n || in_range(&plain) {
        return format!("{{{plain}}}");
    }
    // Each try lands in the range with probability 1/n: about n tries (n <= 256).
    (1u32..)
        .map(|s| format!("{plain}:{s}"))
        .find(|tag| in_range(tag))
        .map(|tag| format!("{{{tag}}}"))
        .unwrap_or_default()
}

/// A Redis Cluster's slots.
const SLOTS: u32 = 16_384;

/// The cluster slot of a hash tag's text (CRC16-XMODEM mod 16,384, as Redis computes it).
pub fn slot(tag: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for b in tag {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    (u32::from(crc) % SLOTS) as u16
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
        assert_eq!(partition("42", 0, 1), "{c:42:p0}");
        let base = partition("42", 3, 4);
        assert!(base.starts_with("{c:42:p3") && base.ends_with('}'), "{base}");
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
    fn slots_are_redis_slots() {
        // Redis: CLUSTER KEYSLOT 123456789 -> 12739, CLUSTER KEYSLOT foo -> 12182.
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"foo"), 12182);
    }

    #[test]
    fn a_campaigns_partitions_fill_the_slot_ranges_in_turn() {
        for n in [2u32, 3, 4, 6, 12, 256] {
            for id in ["a", "spring-2026", "7f3a9c"] {
                let mut primaries = vec![0u32; 3];
                for p in 0..n {
                    let base = partition(id, p, n);
                    let tag = &base[1..base.len() - 1];
                    let s = u32::from(slot(tag.as_bytes()));
                    assert_eq!(s * n / SLOTS, p, "{base} in slot {s}");
                    primaries[(s * 3 / SLOTS) as usize] += 1;
                }
                if n % 3 == 0 {
                    assert!(primaries.iter().all(|c| *c == n / 3), "{primaries:?}");
                }
            }
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("campaign id", "spring-2026_v1").is_ok());
        assert!(check_name("campaign id", "").is_err());
        assert!(check_name("campaign id", "a|b").is_err());
        assert!(check_name("campaign id", "a}b").is_err());
    }
}

//! Sample contact lists for the demo and the benchmarks: Vietnamese mobile numbers written the
//! ways real lists write them, with names, loyalty segments, some invalid rows and duplicates.
//! Deterministic for a given seed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Vietnamese mobile prefixes (after the country code).
const PREFIXES: &[u64] = &[
    32, 33, 34, 35, 36, 37, 38, 39, 56, 58, 59, 70, 76, 77, 78, 79, 81, 82, 83, 84, 85, 86, 88, 89,
    90, 91, 92, 93, 94, 96, 97, 98, 99,
];
const SPAN: u64 = 10_000_000; // 7 digits after the prefix
const NAMES: &[&str] = &[
    "An", "Binh", "Chi", "Dung", "Giang", "Hoa", "Khanh", "Linh", "Minh", "Nam", "Phuong", "Quang",
    "Thao", "Trang", "Tuan", "Vy",
];
const SEGMENTS: &[(&str, u64)] = &[
    ("basic", 880),
    ("silver", 60),
    ("GOLD", 30),
    ("DIAMOND", 10),
    ("VIP", 20),
]; // per mille

#[derive(Clone, Debug)]
pub struct SampleOptions {
    pub rows: u64,
    pub seed: u64,
    /// Share of rows that are not valid numbers.
    pub invalid_ratio: f64,
    /// Share of rows repeating an earlier number (in another format).
    pub duplicate_ratio: f64,
    /// Also write this share of the valid numbers, one per line, to `suppression_path`.
    pub suppression_ratio: f64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            rows: 1000,
            seed: 1,
            invalid_ratio: 0.002,
            duplicate_ratio: 0.001,
            suppression_ratio: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleReport {
    pub rows: u64,
    pub invalid: u64,
    pub duplicates: u64,
    pub suppressed: u64,
}

/// The `i`-th distinct number of the sample space (a bijection for `i` below its size).
pub fn nth_number(i: u64) -> u64 {
    let space = PREFIXES.len() as u64 * SPAN;
    let j = (i % space).wrapping_mul(7_368_787) % space; // 7368787 is prime and does not divide space
    let prefix = PREFIXES[(j / SPAN) as usize];
    84_000_000_000 + prefix * SPAN + j % SPAN
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

/// Write `phone,name,segment` rows to `path`.
pub fn generate(
    path: &Path,
    suppression_path: Option<&Path>,
    opts: &SampleOptions,
) -> Result<SampleReport> {
    if !(0.0..=1.0).contains(&opts.invalid_ratio)
        || !(0.0..=1.0).contains(&opts.duplicate_ratio)
        || !(0.0..=1.0).contains(&opts.suppression_ratio)
    {
        return Err(Error::invalid("sample ratio", "ratios are between 0 and 1"));
    }
    let mut out =
        BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| Error::io(path, e))?);
    let mut sup = match suppression_path {
        Some(p) => Some((
            p,
            BufWriter::new(File::create(p).map_err(|e| Error::io(p, e))?),
        )),
        None => None,
    };
    let mut rng = Rng(opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut r = SampleReport::default();
    let mut next_distinct = 0u64;
    let mut line = Vec::with_capacity(64);
    let w = |out: &mut BufWriter<File>, line: &[u8]| {
        out.write_all(line).map_err(|e| Error::io(path, e))
    };
    w(&mut out, b"phone,name,segment\n")?;
    for _ in 0..opts.rows {
        line.clear();
        let number = if next_distinct > 0 && rng.chance(opts.duplicate_ratio) {
            r.duplicates += 1;
            Some(nth_number(rng.next() % next_distinct))
        } else if rng.chance(opts.invalid_ratio) {
            r.invalid += 1;
            None
        } else {
            next_distinct += 1;
            let n = nth_number(next_distinct - 1);
            if let Some((p, s)) = sup.as_mut() {
                if rng.chance(opts.suppression_ratio) {
                    r.suppressed += 1;
                    writeln!(s, "+{n}").map_err(|e| Error::io(*p, e))?;
                }
            }
            Some(n)
        };
        match number {
            Some(n) => {
                let national = n - 84_000_000_000;
                match rng.next() % 4 {
                    0 => write!(line, "0{national}"),
                    1 => write!(line, "84{national}"),
                    2 => write!(
                        line,
                        "+84 {} {:03} {:04}",
                        national / 10_000_000,
                        national / 10_000 % 1000,
                        national % 10_000
                    ),
                    _ => write!(
                        line,
                        "0{}-{:03}-{:04}",
                        national / 10_000_000,
                        national / 10_000 % 1000,
                        national % 10_000
                    ),
                }
            }
            None => write!(line, "09{}", rng.next() % 1000),
        }
        .map_err(|e| Error::io(path, e))?;
        let name = NAMES[(rng.next() % NAMES.len() as u64) as usize];
        let mut roll = rng.next() % 1000;
        let segment = SEGMENTS
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map_or("basic", |(s, _)| s);
        writeln!(line, ",{name},{segment}").map_err(|e| Error::io(path, e))?;
        w(&mut out, &line)?;
        r.rows += 1;
    }
    out.flush().map_err(|e| Error::io(path, e))?;
    if let Some((p, mut s)) = sup {
        s.flush().map_err(|e| Error::io(p, e))?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_number_is_distinct_and_vietnamese() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000 {
            let n = nth_number(i);
            assert!(seen.insert(n), "repeat at {i}");
            assert!((84_320_000_000..84_999_999_999).contains(&n));
        }
    }
}

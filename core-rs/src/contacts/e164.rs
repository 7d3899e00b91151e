//! Phone-number normalisation to E.164 for bulk contact imports.
//!
//! A raw CSV field (`"090 123 4567"`, `"+84 (90) 123-4567"`, `"0084901234567"`, …) becomes the
//! E.164 number of its digits packed into a `u64` (`+84 90 123 4567` → `84901234567`). The
//! integer is what the import pipeline stores, de-duplicates and compares; [`format_e164`] and
//! [`write_e164`] give the text form back, [`parse_e164`] reads it strictly.
//!
//! # How a field is read ([`Normalizer::normalize`])
//!
//! 1. Leading and trailing ASCII whitespace is ignored. Nothing left, or no digit at all
//!    (only formatting characters) → [`Reject::Empty`].
//! 2. Formatting characters — space, tab, `-`, `.`, `(`, `)`, `/` — are skipped wherever they
//!    stand. One `+` is allowed before the first digit (so `"(+84) 90…"` is fine). Any other byte
//!    → [`Reject::InvalidCharacter`] with the first offending character.
//! 3. **International forms**: a `+`, a leading `00`, or (only when the default country is in
//!    the NANP, calling code 1) a leading `011`. The digits after it are a calling code, found by
//!    longest-prefix match over the complete ITU-T E.164 list ([`calling_code_of`]), then the
//!    national significant number (NSN). Outside the generic E.164 bound of 8..=15 digits →
//!    [`Reject::TooShort`] / [`Reject::TooLong`]; no matching code → [`Reject::UnknownCallingCode`].
//!    If the code belongs to a country of the detailed table ([`countries`]) the NSN length must
//!    also lie in that country's `nsn_min..=nsn_max` (the union over countries sharing the code),
//!    else [`Reject::BadLength`].
//! 4. **National forms**, relative to the default country, tried in this order:
//!    1. trunk prefix + NSN (`0901234567`; strip the prefix),
//!    2. calling code + NSN without `+` (`84901234567`),
//!    3. the bare NSN (`901234567`).
//!
//!    The first form whose NSN is acceptable wins, so Vietnamese `0841234567` (national, NSN
//!    `841234567`) and `84841234567` both give `84841234567`. When none is: more than 15 digits
//!    → `TooLong`; too few to make 8 digits even with the calling code → `TooShort`; otherwise
//!    `BadLength`, counting the digits after a leading trunk prefix.
//!
//! An NSN is *acceptable* when its length is within the country's range, the whole number has
//! 8..=15 digits, and its first digit is possible: in a country whose trunk prefix begins with
//! `0` an NSN never begins with `0` (that `0` is the trunk prefix), and NANP area codes begin
//! with 2–9. When an international-style NSN is not acceptable but is once a leading trunk prefix
//! is removed, the prefix is removed: `+44 (0)20 7946 0958` → `442079460958`.
//!
//! # Guarantees
//!
//! * Every `Ok(n)` has 8..=15 digits, so `parse_e164(&format_e164(n)) == Some(n)`, and
//!   normalising `format_e164(n)` again gives `n` (property-tested below).
//! * No allocation, no panics on any input; one pass over the bytes plus a few table lookups.
//!
//! # Performance
//!
//! About 27–33 ns per field for a realistic mix of Vietnamese formats (release build, one core of
//! an AMD EPYC; the ignored `bench_normalize` test measures it over 10 million fields).
//!
//! # Known limitations
//!
//! * Rule 4.2 precedes 4.3 (so that `84…` written without `+` is found), hence where a
//!   country's NSN range is at least as wide as its calling code is long (IT, DE, AT, FI, ID, LU,
//!   SE, …) a *bare* NSN whose first digits equal the calling code, and whose remainder also has
//!   a valid length, is read as calling code + NSN: Italian `3931234567` → `+39 31234567`, not
//!   `+39 393 1234567`. Vietnam's ranges make this impossible there.
//! * Other countries' international dialling prefixes (AU `0011`, JP `010`, KR `001`, RU `8~10`)
//!   are not recognised; only `+`, `00` and, for NANP defaults, `011` are.
//! * Lengths are checked by range only, not against each country's numbering plan, so a number
//!   of the right length that was never allocated is still accepted.

use std::fmt;

use super::countries::{COUNTRY_TABLE, ITU_CALLING_CODES};

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Fewest digits (calling code + NSN) of a number accepted here; also [`parse_e164`]'s minimum.
const MIN_E164_DIGITS: usize = 8;
/// Most digits of an E.164 number (ITU-T E.164 §6.2.1).
const MAX_E164_DIGITS: usize = 15;
/// Most digits any acceptable field can hold: `011` + 15.
const MAX_INPUT_DIGITS: usize = MAX_E164_DIGITS + 3;
/// Digit scratch buffer; a power of two so that `n % DIGIT_BUF` needs no bounds check.
const DIGIT_BUF: usize = 32;

/// `POW10[k] == 10^k` for every `k` a `u64` can hold.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// A country's numbering facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country {
    /// ISO 3166-1 alpha-2, upper case: `"VN"`.
    pub iso: &'static str,
    /// ITU-T E.164 country calling code: `84`.
    pub calling_code: u16,
    /// National trunk prefix, e.g. `Some("0")`; NANP: `Some("1")`; none: `None`.
    pub trunk_prefix: Option<&'static str>,
    /// Minimum national significant number length (digits).
    pub nsn_min: u8,
    /// Maximum national significant number length (digits).
    pub nsn_max: u8,
}

/// Why a raw number is not valid. `Display` gives a short English reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Nothing but whitespace and formatting characters.
    #[error("empty phone number")]
    Empty,
    /// A character that is neither a digit, a formatting character nor a leading `+`
    /// (the first such; U+FFFD for a byte that is not UTF-8).
    #[error("invalid character {0:?}")]
    InvalidCharacter(char),
    /// Fewer digits than any acceptable form has (`digits` as counted in the field, after an
    /// international prefix if there was one).
    #[error("too short: {digits} digits")]
    TooShort { digits: u8 },
    /// More digits than any acceptable form has (saturates at 255).
    #[error("too long: {digits} digits")]
    TooLong { digits: u8 },
    /// An international number whose calling code is not in the ITU-T E.164 list.
    #[error("unknown country calling code")]
    UnknownCallingCode,
    /// The national part has `digits` digits where the country needs `min..=max`.
    #[error("national number has {digits} digits, expected {}", LenRange(*.min, *.max))]
    BadLength { digits: u8, min: u8, max: u8 },
}

/// `"9"` or `"9 to 10"`, for [`Reject::BadLength`]'s message.
struct LenRange(u8, u8);

impl fmt::Display for LenRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{} to {}", self.0, self.1)
        }
    }
}

/// Normalises raw fields to E.164 relative to a default country. Cheap to copy; build one per
/// import and reuse it for every row.
#[derive(Clone, Copy, Debug)]
pub struct Normalizer {
    /// The default country.
    country: &'static Country,
    /// Its NSN rules (own range, not the union over a shared calling code).
    rules: Rules,
    /// Its calling code, and the same as digit values.
    cc: u64,
    cc_digits: [u8; 5],
    cc_len: u8,
    /// Calling code 1: `011` is an international prefix too.
    nanp: bool,
}

impl Normalizer {
    /// A normaliser whose national forms are read as numbers of `default_country`.
    pub fn new(default_country: &'static Country) -> Self {
        let code = default_country.calling_code;
        let cc_len = decimal_len(u64::from(code));
        let mut cc_digits = [0u8; 5];
        let mut rest = code;
        for slot in cc_digits.iter_mut().take(usize::from(cc_len)).rev() {
            *slot = (rest % 10) as u8;
            rest /= 10;
        }
        Normalizer {
            country: default_country,
            rules: Rules::new(
                code,
                default_country.trunk_prefix,
                default_country.nsn_min,
                default_country.nsn_max,
            ),
            cc: u64::from(code),
            cc_digits,
            cc_len,
            nanp: code == 1,
        }
    }

    /// [`Normalizer::new`] for the country with this ISO 3166-1 alpha-2 code (any case).
    pub fn for_iso(iso: &str) -> Option<Self> {
        country(iso).map(Normalizer::new)
    }

    /// The default country.
    #[inline]
    pub fn country(&self) -> &'static Country {
        self.country
    }

    /// Parse one raw field (bytes, may hold spaces, `-`, `.`, `(`, `)`, `/`, a leading `+`;
    /// surrounding quotes already removed) and return the E.164 number packed as an integer of
    /// its digits (e.g. `+84901234567` → `84901234567`). See the module docs for the rules.
    #[inline]
    pub fn normalize(&self, raw: &[u8]) -> Result<u64, Reject> {
        let field = raw.trim_ascii();
        if field.is_empty() {
            return Err(Reject::Empty);
        }

        // One pass: digit values into `buf`, their decimal value into `val` (meaningful only
        // while there are at most 19 digits, which is all that is ever used).
        let mut buf = [0u8; DIGIT_BUF];
        let mut n = 0usize;
        let mut val = 0u64;
        let mut plus = false;
        for (i, &b) in field.iter().enumerate() {
            let d = b.wrapping_sub(b'0');
            if d < 10 {
                buf[n % DIGIT_BUF] = d;
                n += 1;
                val = val.wrapping_mul(10).wrapping_add(u64::from(d));
            } else if !is_separator(b) {
                if b == b'+' && n == 0 && !plus {
                    plus = true;
                } else {
                    return Err(invalid_character(field, i));
                }
            }
        }
        if n == 0 {
            return Err(Reject::Empty);
        }
        if n > MAX_INPUT_DIGITS {
            return Err(too_long(n));
        }
        let digits = &buf[..n];

        if plus {
            international(digits, 0, val)
        } else if digits.starts_with(&[0, 0]) {
            international(digits, 2, val)
        } else if self.nanp && digits.starts_with(&[0, 1, 1]) {
            international(digits, 3, val)
        } else {
            self.national(digits, val)
        }
    }

    /// Rules 4.1–4.3 of the module docs. `d` holds at most [`MAX_INPUT_DIGITS`] digits whose
    /// decimal value is `val`.
    #[inline]
    fn national(&self, d: &[u8], val: u64) -> Result<u64, Reject> {
        let rules = &self.rules;
        // 1. Trunk prefix + NSN.
        let trunk = rules.trunk();
        if !trunk.is_empty() {
            if let Some(nsn) = d.strip_prefix(trunk) {
                if rules.accepts(nsn) {
                    return Ok(self.compose(d, trunk.len(), val));
                }
            }
        }
        // 2. Calling code + NSN, the '+' left out (a trunk prefix after it is tolerated).
        let cc = self
            .cc_digits
            .get(..usize::from(self.cc_len))
            .unwrap_or(&[]);
        if d.starts_with(cc) {
            if let Some(start) = rules.accept(d, cc.len()) {
                return Ok(self.compose(d, start, val));
            }
        }
        // 3. Bare NSN.
        if rules.accepts(d) {
            return Ok(self.compose(d, 0, val));
        }
        Err(national_error(rules, d))
    }

    /// The default calling code followed by the NSN `d[start..]`.
    #[inline(always)]
    fn compose(&self, d: &[u8], start: usize, val: u64) -> u64 {
        self.cc * POW10[d.len() - start] + tail_value(d, start, val)
    }
}

// ---------------------------------------------------------------------------------------------
// Free functions
// ---------------------------------------------------------------------------------------------

/// The detailed table's entry for an ISO 3166-1 alpha-2 code, any case (`"vn"`, `"VN"`).
pub fn country(iso: &str) -> Option<&'static Country> {
    let iso = iso.as_bytes();
    if iso.len() != 2 {
        return None;
    }
    COUNTRIES
        .iter()
        .find(|c| c.iso.as_bytes().eq_ignore_ascii_case(iso))
}

/// The detailed country table (see the table's doc comment for what it holds).
pub fn countries() -> &'static [Country] {
    COUNTRIES
}

/// `84901234567` → `"+84901234567"`.
pub fn format_e164(n: u64) -> String {
    let (buf, start) = decimal_digits(n);
    let mut s = String::with_capacity(buf.len() - start + 1);
    s.push('+');
    s.extend(buf[start..].iter().map(|&b| char::from(b)));
    s
}

/// As [`format_e164`], appended to `out` (no allocation beyond growing `out`).
#[inline]
pub fn write_e164(n: u64, out: &mut Vec<u8>) {
    let (buf, start) = decimal_digits(n);
    out.reserve(buf.len() - start + 1);
    out.push(b'+');
    out.extend_from_slice(&buf[start..]);
}

/// Strict reader of the text form: `'+'` then 8..=15 ASCII digits, the first not `0`, nothing
/// else. `"+84901234567"` → `Some(84901234567)`. Does not check the calling code.
pub fn parse_e164(s: &str) -> Option<u64> {
    let digits = s.as_bytes().strip_prefix(b"+")?;
    if !(MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&digits.len()) || digits.first() == Some(&b'0')
    {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.wrapping_sub(b'0');
        (d < 10).then(|| acc * 10 + u64::from(d))
    })
}

/// The calling code `n` starts with, by longest-prefix match against the full ITU-T E.164 list
/// (`84901234567` → `Some(84)`, `12125550100` → `Some(1)`). `None` when no code matches or `n`
/// is shorter than its code.
pub fn calling_code_of(n: u64) -> Option<u16> {
    let len = n.checked_ilog10()? as usize + 1;
    let key = if len >= 3 {
        n / POW10[len - 3]
    } else {
        n * POW10[3 - len]
    };
    let key = usize::try_from(key).ok()?;
    let code_len = usize::from(*PREFIX_LEN.get(key)?);
    if code_len == 0 || code_len > len {
        return None;
    }
    u16::try_from(key / POW10[3 - code_len] as usize).ok()
}

// ---------------------------------------------------------------------------------------------
// Internals: parsing helpers
// ---------------------------------------------------------------------------------------------

/// Formatting characters skipped inside a number.
#[inline(always)]
fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'-' | b'.' | b'(' | b')' | b'/')
}

/// Rule 3 of the module docs: `d[p..]` is calling code + NSN (`p` = length of the
/// international prefix: 0 after '+', 2 for `00`, 3 for `011`).
#[inline]
fn international(d: &[u8], p: usize, val: u64) -> Result<u64, Reject> {
    let m = d.len() - p;
    if m > MAX_E164_DIGITS {
        return Err(too_long(m));
    }
    // First three digits after the prefix, zero-padded: the key of PREFIX_LEN.
    let at = |i: usize| usize::from(d.get(p + i).copied().unwrap_or(0));
    let key = at(0) * 100 + at(1) * 10 + at(2);
    let code_len = usize::from(PREFIX_LEN[key]);
    if code_len == 0 || code_len > m {
        return Err(unknown_code(m, code_len));
    }
    let code = match code_len {
        1 => key / 100,
        2 => key / 10,
        _ => key,
    };
    if m < MIN_E164_DIGITS {
        return Err(too_short(m));
    }
    let mut start = p + code_len;
    if let Some(rules) = &CODE_RULES[code] {
        match rules.accept(d, start) {
            Some(s) => start = s,
            None => return Err(length_error(rules, &d[start..])),
        }
    }
    Ok(code as u64 * POW10[d.len() - start] + tail_value(d, start, val))
}

/// Decimal value of `d[start..]`, given `val`, the decimal value of all of `d`
/// (`d.len() <= 19`): `val - value(d[..start]) * 10^(len - start)`, with no loop over the tail.
#[inline(always)]
fn tail_value(d: &[u8], start: usize, val: u64) -> u64 {
    let head = d[..start].iter().fold(0u64, |a, &x| a * 10 + u64::from(x));
    val - head * POW10[d.len() - start]
}

/// Decimal digits of `n` as ASCII, right-aligned: `(buf, start)` with the digits in `buf[start..]`.
#[inline]
pub(crate) fn decimal_digits(mut n: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return (buf, i);
        }
    }
}

/// Number of decimal digits of `n` (1 for 0).
const fn decimal_len(mut n: u64) -> u8 {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

const fn min_u8(a: u8, b: u8) -> u8 {
    if a < b {
        a
    } else {
        b
    }
}

const fn max_u8(a: u8, b: u8) -> u8 {
    if a > b {
        a
    } else {
        b
    }
}

/// `usize` count → the `u8` carried by [`Reject`], saturating.
fn sat(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

// ---------------------------------------------------------------------------------------------
// Internals: error construction (cold paths)
// ---------------------------------------------------------------------------------------------

/// [`Reject::InvalidCharacter`] for the character starting at `field[i]` (every byte before it
/// is ASCII, so `i` is a character boundary).
#[cold]
#[inline(never)]
fn invalid_character(field: &[u8], i: usize) -> Reject {
    let rest = field.get(i..).unwrap_or(&[]);
    let head = rest.get(..4).unwrap_or(rest);
    let c = head
        .utf8_chunks()
        .next()
        .and_then(|chunk| chunk.valid().chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    Reject::InvalidCharacter(c)
}

#[cold]
#[inline(never)]
fn too_long(digits: usize) -> Reject {
    Reject::TooLong {
        digits: sat(digits),
    }
}

#[cold]
#[inline(never)]
fn too_short(digits: usize) -> Reject {
    Reject::TooShort {
        digits: sat(digits),
    }
}

/// No calling code matched the `m` digits after an international prefix (`code_len` is the
/// length of the code they begin with when there were too few digits to hold it, else 0).
#[cold]
#[inline(never)]
fn unknown_code(m: usize, code_len: usize) -> Reject {
    if code_len > m || m < 3 {
        too_short(m)
    } else {
        Reject::UnknownCallingCode
    }
}

/// The NSN `nsn` of an international number (8..=15 digits in all) was not acceptable.
#[cold]
#[inline(never)]
fn length_error(rules: &Rules, nsn: &[u8]) -> Reject {
    let digits = sat(nsn_len_for_report(rules, nsn));
    Reject::BadLength {
        digits,
        min: rules.min,
        max: rules.max,
    }
}

/// No national form of `d` was acceptable under the default country's `rules`.
#[cold]
#[inline(never)]
fn national_error(rules: &Rules, d: &[u8]) -> Reject {
    let n = d.len();
    if n > MAX_E164_DIGITS {
        return too_long(n);
    }
    // Even as a bare NSN after the calling code it would not reach 8 digits.
    if n + usize::from(rules.cc_len) < MIN_E164_DIGITS {
        return too_short(n);
    }
    Reject::BadLength {
        digits: sat(nsn_len_for_report(rules, d)),
        min: rules.min,
        max: rules.max,
    }
}

/// Length of `nsn` as reported in [`Reject::BadLength`]: a leading trunk prefix not counted.
fn nsn_len_for_report(rules: &Rules, nsn: &[u8]) -> usize {
    let trunk = rules.trunk();
    match nsn.strip_prefix(trunk) {
        Some(rest) if !trunk.is_empty() => rest.len(),
        _ => nsn.len(),
    }
}

// ---------------------------------------------------------------------------------------------
// Internals: per-calling-code NSN rules
// ---------------------------------------------------------------------------------------------

/// What makes an NSN acceptable for one country (or the union over a shared calling code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rules {
    /// Accepted NSN lengths: the country's range cut to what keeps the total within 8..=15.
    lo: u8,
    hi: u8,
    /// The country's own range, reported in [`Reject::BadLength`].
    min: u8,
    max: u8,
    /// Digits of the calling code.
    cc_len: u8,
    /// Trunk prefix as digit values; `trunk_len == 0` when there is none (or it is not made of
    /// 1..=4 digits, in which case it can never match anyway).
    trunk: [u8; 4],
    trunk_len: u8,
    /// Bit `d` set: an NSN cannot begin with digit `d`.
    bad_first: u16,
}

impl Rules {
    const fn new(calling_code: u16, trunk_prefix: Option<&str>, min: u8, max: u8) -> Self {
        let (trunk, trunk_len) = trunk_digits(trunk_prefix);
        let mut bad_first = 0u16;
        if trunk_len > 0 && trunk[0] == 0 {
            bad_first |= 1 << 0;
        }
        if calling_code == 1 {
            bad_first |= (1 << 0) | (1 << 1); // NANP area codes are [2-9]XX
        }
        Rules {
            lo: 0,
            hi: 0,
            min,
            max,
            cc_len: decimal_len(calling_code as u64),
            trunk,
            trunk_len,
            bad_first,
        }
        .with_range(min, max)
    }

    /// The same rules with the NSN range `min..=max`.
    const fn with_range(mut self, min: u8, max: u8) -> Self {
        self.min = min;
        self.max = max;
        self.lo = max_u8(min, (MIN_E164_DIGITS as u8).saturating_sub(self.cc_len));
        self.hi = min_u8(max, (MAX_E164_DIGITS as u8).saturating_sub(self.cc_len));
        self
    }

    /// The trunk prefix digits (empty if none).
    #[inline(always)]
    fn trunk(&self) -> &[u8] {
        self.trunk.get(..usize::from(self.trunk_len)).unwrap_or(&[])
    }

    /// Is `nsn` an acceptable NSN as it stands?
    #[inline(always)]
    fn accepts(&self, nsn: &[u8]) -> bool {
        match nsn.first() {
            Some(&first) => {
                nsn.len() >= usize::from(self.lo)
                    && nsn.len() <= usize::from(self.hi)
                    && (self.bad_first >> first) & 1 == 0
            }
            None => false,
        }
    }

    /// Where the acceptable NSN in `d[start..]` begins: at `start`, or after a trunk prefix that
    /// was written after the calling code (`+44 (0)20…`). `None` if neither is acceptable.
    #[inline(always)]
    fn accept(&self, d: &[u8], start: usize) -> Option<usize> {
        let nsn = d.get(start..)?;
        if self.accepts(nsn) {
            return Some(start);
        }
        let trunk = self.trunk();
        match nsn.strip_prefix(trunk) {
            Some(rest) if !trunk.is_empty() && self.accepts(rest) => Some(start + trunk.len()),
            _ => None,
        }
    }
}

/// A trunk prefix string as digit values.
const fn trunk_digits(prefix: Option<&str>) -> ([u8; 4], u8) {
    let bytes = match prefix {
        Some(s) => s.as_bytes(),
        None => return ([0; 4], 0),
    };
    if bytes.is_empty() || bytes.len() > 4 {
        return ([0; 4], 0);
    }
    let mut out = [0u8; 4];
    let mut i = 0;
    while i < bytes.len() {
        let d = bytes[i].wrapping_sub(b'0');
        if d > 9 {
            return ([0; 4], 0);
        }
        out[i] = d;
        i += 1;
    }
    (out, bytes.len() as u8)
}

/// `PREFIX_LEN[abc]` = length (1..=3) of the ITU calling code that numbers starting with the
/// digits `a b c` begin with, or 0 if none. E.164 calling codes are prefix-free, so this single
/// lookup is the longest-prefix match (checked at compile time).
static PREFIX_LEN: [u8; 1000] = build_prefix_len();

/// `CODE_RULES[code]`: the NSN rules of the detailed table's countries with that calling code
/// (ranges united over countries sharing it), `None` for codes without a detailed entry.
static CODE_RULES: [Option<Rules>; 1000] = build_code_rules();

const fn build_prefix_len() -> [u8; 1000] {
    let mut t = [0u8; 1000];
    let mut i = 0;
    while i < ITU_CALLING_CODES.len() {
        let code = ITU_CALLING_CODES[i] as usize;
        assert!(
            code >= 1 && code <= 999,
            "ITU calling codes have 1 to 3 digits"
        );
        let len = decimal_len(code as u64);
        let span = POW10[3 - len as usize] as usize;
        let mut k = code * span;
        while k < (code + 1) * span {
            assert!(
                t[k] == 0,
                "ITU calling code list is not prefix-free (or has a duplicate)"
            );
            t[k] = len;
            k += 1;
        }
        i += 1;
    }
    t
}

const fn is_itu_code(code: u16) -> bool {
    let mut i = 0;
    while i < ITU_CALLING_CODES.len() {
        if ITU_CALLING_CODES[i] == code {
            return true;
        }
        i += 1;
    }
    false
}

const fn build_code_rules() -> [Option<Rules>; 1000] {
    let mut t: [Option<Rules>; 1000] = [None; 1000];
    let mut i = 0;
    while i < COUNTRY_TABLE.len() {
        let c = &COUNTRY_TABLE[i];
        assert!(
            is_itu_code(c.calling_code),
            "country table: calling code not in the ITU list"
        );
        assert!(c.nsn_min <= c.nsn_max, "country table: nsn_min > nsn_max");
        let code = c.calling_code as usize;
        t[code] = Some(match t[code] {
            Some(r) => r.with_range(min_u8(r.min, c.nsn_min), max_u8(r.max, c.nsn_max)),
            None => Rules::new(c.calling_code, c.trunk_prefix, c.nsn_min, c.nsn_max),
        });
        i += 1;
    }
    t
}

/// The table behind [`countries`] and [`country`].
static COUNTRIES: &[Country] = COUNTRY_TABLE;

const _: () = assert!(
    COUNTRY_TABLE.len() < 255,
    "country table too long for the u8 indices"
);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vn() -> Normalizer {
        Normalizer::for_iso("VN").unwrap_or_else(|| unreachable!("VN is in the table"))
    }

    fn nz(iso: &str) -> Normalizer {
        Normalizer::for_iso(iso).unwrap_or_else(|| unreachable!("{iso} is in the table"))
    }

    // --- the brief's examples ---------------------------------------------------------------

    #[test]
    fn vietnam_examples() {
        let n = vn();
        for raw in [
            "0901234567",
            "84901234567",
            "+84 90 123 4567",
            "+84901234567",
            "0084 90 123 4567",
            "090-123-4567",
            "(090) 123.4567",
            "  090 123 4567\t",
            "901234567",
            "+84 (0) 90 123 4567",
            "84 0 90 123 4567",
            "(+84) 90/123/4567",
        ] {
            assert_eq!(n.normalize(raw.as_bytes()), Ok(84_901_234_567), "{raw:?}");
        }
        // The ordering case: national NSN beginning with the calling code.
        assert_eq!(n.normalize(b"0841234567"), Ok(84_841_234_567));
        assert_eq!(n.normalize(b"84841234567"), Ok(84_841_234_567));
        assert_eq!(n.normalize(b"841234567"), Ok(84_841_234_567));
        // 10-digit fixed-line NSN.
        assert_eq!(n.normalize(b"024 3823 4567"), Ok(842_438_234_567));
        assert_eq!(n.normalize(b"+84 24 3823 4567"), Ok(842_438_234_567));
        // A foreign number while VN is the default.
        assert_eq!(n.normalize(b"+1 (212) 555-0100"), Ok(12_125_550_100));
        assert_eq!(n.normalize(b"0044 20 7946 0958"), Ok(442_079_460_958));
    }

    #[test]
    fn nanp_examples() {
        let us = nz("us");
        for raw in [
            "(212) 555-0100",
            "212.555.0100",
            "1-212-555-0100",
            "+1 212 555 0100",
            "1 (212) 555 0100",
        ] {
            assert_eq!(us.normalize(raw.as_bytes()), Ok(12_125_550_100), "{raw:?}");
        }
        // 011 is an international prefix for NANP defaults only.
        assert_eq!(us.normalize(b"011 84 90 123 4567"), Ok(84_901_234_567));
        assert_eq!(us.normalize(b"011 44 20 7946 0958"), Ok(442_079_460_958));
        assert!(vn().normalize(b"011 84 90 123 4567").is_err());
        // Area codes cannot start with 0 or 1.
        assert!(us.normalize(b"055 555 0100").is_err());
        assert_eq!(nz("CA").normalize(b"+1 1 416 555 0199"), Ok(14_165_550_199));
    }

    #[test]
    fn other_countries() {
        assert_eq!(nz("GB").normalize(b"020 7946 0958"), Ok(442_079_460_958));
        assert_eq!(nz("GB").normalize(b"07700 900123"), Ok(447_700_900_123));
        assert_eq!(
            nz("GB").normalize(b"+44 (0)20 7946 0958"),
            Ok(442_079_460_958)
        );
        assert_eq!(nz("DE").normalize(b"030 123456"), Ok(4_930_123_456));
        assert_eq!(nz("DE").normalize(b"0151 2345 6789"), Ok(4_915_123_456_789));
        assert_eq!(nz("FR").normalize(b"01 23 45 67 89"), Ok(33_123_456_789));
        assert_eq!(nz("FR").normalize(b"06.12.34.56.78"), Ok(33_612_345_678));
        assert_eq!(nz("IN").normalize(b"098765 43210"), Ok(919_876_543_210));
        assert_eq!(nz("IN").normalize(b"98765 43210"), Ok(919_876_543_210));
        assert_eq!(nz("IT").normalize(b"06 1234 5678"), Ok(390_612_345_678));
        assert_eq!(nz("IT").normalize(b"+39 06 1234 5678"), Ok(390_612_345_678));
        assert_eq!(nz("RU").normalize(b"8 (916) 123-45-67"), Ok(79_161_234_567));
        assert_eq!(nz("RU").normalize(b"8 800 123-45-67"), Ok(78_001_234_567));
        assert_eq!(nz("HU").normalize(b"06 1 234 5678"), Ok(3_612_345_678));
        assert_eq!(nz("SG").normalize(b"9123 4567"), Ok(6_591_234_567));
        assert_eq!(nz("TH").normalize(b"081-234-5678"), Ok(66_812_345_678));
        assert_eq!(nz("ID").normalize(b"0812-3456-7890"), Ok(6_281_234_567_890));
        assert_eq!(nz("PH").normalize(b"0917 123 4567"), Ok(639_171_234_567));
        assert_eq!(
            nz("BR").normalize(b"(11) 91234-5678"),
            Ok(5_511_912_345_678)
        );
        assert_eq!(nz("AU").normalize(b"0412 345 678"), Ok(61_412_345_678));
        // The documented ambiguity: calling code + NSN is tried before the bare NSN.
        assert_eq!(nz("IT").normalize(b"3931234567"), Ok(3_931_234_567));
        assert_eq!(nz("IT").normalize(b"+39 393 1234567"), Ok(393_931_234_567));
        // A code without a detailed entry: only the generic bounds apply.
        assert_eq!(vn().normalize(b"+850 2 381 2345"), Ok(85_023_812_345));
        assert_eq!(vn().normalize(b"+882 1234 5678 9"), Ok(882_123_456_789));
    }

    // --- each Reject variant ------------------------------------------------------------------

    #[test]
    fn reject_empty() {
        let n = vn();
        for raw in ["", "   ", "\t\r\n", "--", "( )", "+", " + "] {
            assert_eq!(n.normalize(raw.as_bytes()), Err(Reject::Empty), "{raw:?}");
        }
    }

    #[test]
    fn reject_invalid_character() {
        let n = vn();
        assert_eq!(
            n.normalize(b"090 123 456x"),
            Err(Reject::InvalidCharacter('x'))
        );
        assert_eq!(n.normalize(b"n/a"), Err(Reject::InvalidCharacter('n')));
        assert_eq!(
            n.normalize(b"84+901234567"),
            Err(Reject::InvalidCharacter('+'))
        );
        assert_eq!(
            n.normalize(b"++84901234567"),
            Err(Reject::InvalidCharacter('+'))
        );
        assert_eq!(
            n.normalize(b"0901\n234567"),
            Err(Reject::InvalidCharacter('\n'))
        );
        assert_eq!(
            n.normalize("090 1234 567 é".as_bytes()),
            Err(Reject::InvalidCharacter('é'))
        );
        assert_eq!(
            n.normalize("０９０".as_bytes()),
            Err(Reject::InvalidCharacter('０'))
        );
        assert_eq!(
            n.normalize(b"0901\xff234567"),
            Err(Reject::InvalidCharacter('\u{FFFD}'))
        );
        assert_eq!(
            n.normalize(b"09012345\xe2\x82"),
            Err(Reject::InvalidCharacter('\u{FFFD}'))
        );
        assert_eq!(
            n.normalize(b"\"0901234567\""),
            Err(Reject::InvalidCharacter('"'))
        );
    }

    #[test]
    fn reject_too_short() {
        let n = vn();
        assert_eq!(n.normalize(b"12345"), Err(Reject::TooShort { digits: 5 }));
        assert_eq!(n.normalize(b"+8"), Err(Reject::TooShort { digits: 1 }));
        assert_eq!(n.normalize(b"+85"), Err(Reject::TooShort { digits: 2 }));
        assert_eq!(
            n.normalize(b"+850 1234"),
            Err(Reject::TooShort { digits: 7 })
        );
        assert_eq!(n.normalize(b"00"), Err(Reject::TooShort { digits: 0 }));
        assert_eq!(n.normalize(b"+84 901"), Err(Reject::TooShort { digits: 5 }));
        assert_eq!(
            n.normalize(b"0084 9012"),
            Err(Reject::TooShort { digits: 6 })
        );
    }

    #[test]
    fn reject_too_long() {
        let n = vn();
        assert_eq!(
            n.normalize(b"+84 1234 5678 9012 34"),
            Err(Reject::TooLong { digits: 16 })
        );
        assert_eq!(
            n.normalize(b"0901234567890123"),
            Err(Reject::TooLong { digits: 16 })
        );
        assert_eq!(
            n.normalize(&[b'9'; 300]),
            Err(Reject::TooLong { digits: 255 })
        );
    }

    #[test]
    fn reject_unknown_calling_code() {
        let n = vn();
        assert_eq!(
            n.normalize(b"+999 1234 5678"),
            Err(Reject::UnknownCallingCode)
        );
        assert_eq!(
            n.normalize(b"00 388 1234 5678"),
            Err(Reject::UnknownCallingCode)
        );
        assert_eq!(
            n.normalize(b"+0 84 901234567"),
            Err(Reject::UnknownCallingCode)
        );
    }

    #[test]
    fn reject_bad_length() {
        let n = vn();
        let bad = |digits| {
            Err(Reject::BadLength {
                digits,
                min: 9,
                max: 10,
            })
        };
        assert_eq!(n.normalize(b"+84 12345678"), bad(8));
        assert_eq!(n.normalize(b"+84 123 456 789 01"), bad(11));
        assert_eq!(n.normalize(b"012345678"), bad(8));
        assert_eq!(n.normalize(b"849 0123"), bad(7));
        assert_eq!(n.normalize(b"+84 0 1234 5678"), bad(8));
        assert_eq!(n.normalize(b"090 1234 56789"), bad(11));
        assert_eq!(
            nz("US").normalize(b"+1 212 555 010"),
            Err(Reject::BadLength {
                digits: 9,
                min: 10,
                max: 10
            })
        );
        assert_eq!(
            nz("FR").normalize(b"01 23 45 67"),
            Err(Reject::BadLength {
                digits: 7,
                min: 9,
                max: 9
            })
        );
    }

    #[test]
    fn reject_display() {
        assert_eq!(Reject::Empty.to_string(), "empty phone number");
        assert_eq!(
            Reject::InvalidCharacter('x').to_string(),
            "invalid character 'x'"
        );
        assert_eq!(
            Reject::TooShort { digits: 5 }.to_string(),
            "too short: 5 digits"
        );
        assert_eq!(
            Reject::TooLong { digits: 16 }.to_string(),
            "too long: 16 digits"
        );
        assert_eq!(
            Reject::UnknownCallingCode.to_string(),
            "unknown country calling code"
        );
        assert_eq!(
            Reject::BadLength {
                digits: 8,
                min: 9,
                max: 10
            }
            .to_string(),
            "national number has 8 digits, expected 9 to 10"
        );
        assert_eq!(
            Reject::BadLength {
                digits: 9,
                min: 10,
                max: 10
            }
            .to_string(),
            "national number has 9 digits, expected 10"
        );
    }

    // --- formatting -----------------------------------------------------------------------------

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_e164(84_901_234_567), "+84901234567");
        let mut out = b"x,".to_vec();
        write_e164(84_901_234_567, &mut out);
        write_e164(12_125_550_100, &mut out);
        assert_eq!(out, b"x,+84901234567+12125550100");
        assert_eq!(format_e164(u64::MAX), "+18446744073709551615");
        assert_eq!(format_e164(0), "+0");

        assert_eq!(parse_e164("+84901234567"), Some(84_901_234_567));
        assert_eq!(parse_e164("+12345678"), Some(12_345_678));
        assert_eq!(parse_e164("+123456789012345"), Some(123_456_789_012_345));
        for bad in [
            "84901234567",
            "+1234567",
            "+1234567890123456",
            "+0901234567",
            "+84 901234567",
            "+8490123456x",
            "",
            "+",
        ] {
            assert_eq!(parse_e164(bad), None, "{bad:?}");
        }
        for n in [
            12_125_550_100u64,
            84_901_234_567,
            12_345_678,
            999_999_999_999_999,
        ] {
            assert_eq!(parse_e164(&format_e164(n)), Some(n));
        }
    }

    #[test]
    fn calling_codes() {
        assert_eq!(calling_code_of(84_901_234_567), Some(84));
        assert_eq!(calling_code_of(12_125_550_100), Some(1));
        assert_eq!(calling_code_of(79_161_234_567), Some(7));
        assert_eq!(calling_code_of(85_512_345_678), Some(855));
        assert_eq!(calling_code_of(380_441_234_567), Some(380));
        assert_eq!(calling_code_of(998_901_234_567), Some(998));
        assert_eq!(calling_code_of(886_912_345_678), Some(886));
        assert_eq!(calling_code_of(27_821_234_567), Some(27));
        assert_eq!(calling_code_of(84), Some(84));
        assert_eq!(calling_code_of(1), Some(1));
        assert_eq!(calling_code_of(85), None); // 85x needs a third digit
        assert_eq!(calling_code_of(0), None);
        assert_eq!(calling_code_of(999_123_456), None);
        assert_eq!(calling_code_of(3_881_234_567), None);
        assert_eq!(calling_code_of(u64::MAX), Some(1));
    }

    // --- the tables -----------------------------------------------------------------------------

    #[test]
    fn country_lookup() {
        let facts =
            country("vn").map(|c| (c.iso, c.calling_code, c.trunk_prefix, c.nsn_min, c.nsn_max));
        assert_eq!(facts, Some(("VN", 84, Some("0"), 9, 10)));
        assert_eq!(country("Vn").map(|c| c.iso), Some("VN"));
        assert_eq!(
            country("US").map(|c| (c.calling_code, c.trunk_prefix)),
            Some((1, Some("1")))
        );
        assert!(country("XX").is_none());
        assert!(country("").is_none());
        assert!(country("VNM").is_none());
        assert!(Normalizer::for_iso("zz").is_none());
        assert_eq!(vn().country().iso, "VN");
    }

    #[test]
    fn itu_list_is_sorted_and_complete_for_the_table() {
        assert!(ITU_CALLING_CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(ITU_CALLING_CODES.len() > 200);
        for c in countries() {
            assert_eq!(
                calling_code_of(u64::from(c.calling_code) * POW10[usize::from(c.nsn_max)] + 1),
                Some(c.calling_code)
            );
        }
        for code in ITU_CALLING_CODES {
            let n = u64::from(*code) * 100_000_000;
            assert_eq!(calling_code_of(n), Some(*code), "{code}");
        }
    }

    #[test]
    fn country_table_is_consistent() {
        let all = countries();
        assert!(all.len() >= 60, "{} countries", all.len());
        for (i, c) in all.iter().enumerate() {
            assert!(
                c.iso.len() == 2 && c.iso.bytes().all(|b| b.is_ascii_uppercase()),
                "{}",
                c.iso
            );
            assert!(
                all[..i].iter().all(|o| o.iso != c.iso),
                "duplicate {}",
                c.iso
            );
            assert!(c.nsn_min <= c.nsn_max, "{}", c.iso);
            let cc_len = usize::from(decimal_len(c.calling_code.into()));
            assert!(
                cc_len + usize::from(c.nsn_min) >= MIN_E164_DIGITS,
                "{} too short",
                c.iso
            );
            assert!(
                cc_len + usize::from(c.nsn_max) <= MAX_E164_DIGITS,
                "{} too long",
                c.iso
            );
            if let Some(tp) = c.trunk_prefix {
                assert!(
                    !tp.is_empty() && tp.len() <= 4 && tp.bytes().all(|b| b.is_ascii_digit()),
                    "{}",
                    c.iso
                );
            }
            // Countries sharing a calling code share the trunk prefix.
            let first = all.iter().find(|o| o.calling_code == c.calling_code);
            assert_eq!(
                first.map(|f| f.trunk_prefix),
                Some(c.trunk_prefix),
                "{}",
                c.iso
            );
            assert!(std::ptr::eq(country(c.iso).unwrap_or(&all[0]), c));
        }
        let asean = ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"];
        let g20 = [
            "AR", "AU", "BR", "CA", "CN", "FR", "DE", "IN", "ID", "IT", "JP", "KR", "MX", "RU",
            "SA", "ZA", "TR", "GB", "US",
        ];
        for iso in asean.iter().chain(&g20) {
            assert!(country(iso).is_some(), "{iso} missing");
        }
    }

    // --- properties ------------------------------------------------------------------------------

    /// Inserts each `(index, separator)` into `s`, positions taken modulo the growing length.
    fn sprinkle(s: &str, seps: &[(prop::sample::Index, &str)]) -> String {
        let mut out = s.to_string();
        for (at, sep) in seps {
            // Keep a leading '+' first and never split the string before it.
            let lo = usize::from(out.starts_with('+'));
            let pos = lo + at.index(out.len() - lo + 1);
            out.insert_str(pos, sep);
        }
        out
    }

    fn seps() -> impl Strategy<Value = Vec<(prop::sample::Index, &'static str)>> {
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(vec![" ", "-", " - ", "  "]),
            ),
            0..6,
        )
    }

    /// Phone-like fields: an optional prefix, 1..=17 digits, separators sprinkled in.
    fn phoneish() -> impl Strategy<Value = String> {
        let prefix =
            prop::sample::select(vec!["", "", "+", "00", "0", "011", "84", "1", "44", "(0)"]);
        (prefix, prop::collection::vec(0u8..10, 1..=17), seps()).prop_map(|(p, ds, seps)| {
            let body: String = ds.iter().map(|d| char::from(b'0' + d)).collect();
            sprinkle(&format!("{p}{body}"), &seps)
        })
    }

    fn any_country() -> impl Strategy<Value = &'static Country> {
        (0..countries().len()).prop_map(|i| &countries()[i])
    }

    proptest! {
        /// (a) every way of writing a Vietnamese 9-digit NSN gives the same number.
        #[test]
        fn vn_forms_agree(
            first in prop::sample::select(vec!['3', '5', '7', '8', '9']),
            rest in prop::collection::vec(0u8..10, 8),
            seps in seps(),
        ) {
            let nsn: String = std::iter::once(first).chain(rest.iter().map(|d| char::from(b'0' + d))).collect();
            let expected = 84 * 1_000_000_000 + nsn.parse::<u64>().unwrap_or(0);
            let n = vn();
            for form in [format!("0{nsn}"), format!("84{nsn}"), format!("+84{nsn}"), format!("0084{nsn}"), nsn.clone()] {
                prop_assert_eq!(n.normalize(form.as_bytes()), Ok(expected), "{}", form);
                let spaced = sprinkle(&form, &seps);
                prop_assert_eq!(n.normalize(spaced.as_bytes()), Ok(expected), "{}", spaced);
            }
        }

        /// (b) arbitrary bytes never panic.
        #[test]
        fn never_panics_on_bytes(raw in prop::collection::vec(any::<u8>(), 0..48), c in any_country()) {
            let _ = Normalizer::new(c).normalize(&raw);
        }

        /// (b') nor do bytes drawn from the interesting alphabet.
        #[test]
        fn never_panics_on_phone_alphabet(
            raw in prop::collection::vec(prop::sample::select(b"0123456789 +-().\t/x\xc3\xa9".to_vec()), 0..40),
            c in any_country(),
        ) {
            let _ = Normalizer::new(c).normalize(&raw);
        }

        /// (c) + (d): every Ok result formats, parses back, and re-normalises to itself.
        #[test]
        fn ok_results_round_trip(raw in phoneish(), c in any_country()) {
            let nz = Normalizer::new(c);
            if let Ok(n) = nz.normalize(raw.as_bytes()) {
                let text = format_e164(n);
                prop_assert!((MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&(text.len() - 1)), "{} -> {}", raw, text);
                prop_assert_eq!(parse_e164(&text), Some(n), "{} -> {}", raw, text);
                prop_assert_eq!(nz.normalize(text.as_bytes()), Ok(n), "{} -> {}", raw, text);
                // Also from any other default country, and via write_e164.
                prop_assert_eq!(vn().normalize(text.as_bytes()), Ok(n));
                let mut buf = Vec::new();
                write_e164(n, &mut buf);
                prop_assert_eq!(buf, text.as_bytes());
                prop_assert!(calling_code_of(n).is_some());
            }
        }

        /// (d) for numbers of every table country: national form → E.164 → itself.
        #[test]
        fn national_then_international(c in any_country(), ds in prop::collection::vec(0u8..10, 15), first in 2u8..10, len_pick in 0u8..16) {
            let len = usize::from(c.nsn_min + len_pick % (c.nsn_max - c.nsn_min + 1));
            let mut nsn: String = ds.iter().take(len).map(|d| char::from(b'0' + d)).collect();
            nsn.replace_range(..1, &char::from(b'0' + first).to_string());
            // Without a trunk prefix, a bare NSN that starts with the calling code is ambiguous
            // (see the module docs); those are read as calling code + NSN.
            if c.trunk_prefix.is_none() && nsn.starts_with(&c.calling_code.to_string()) {
                return Ok(());
            }
            let nz = Normalizer::new(c);
            let national = format!("{}{nsn}", c.trunk_prefix.unwrap_or(""));
            let n = nz.normalize(national.as_bytes());
            prop_assert!(n.is_ok(), "{} {} -> {:?}", c.iso, national, n);
            if let Ok(n) = n {
                prop_assert_eq!(n, u64::from(c.calling_code) * POW10[len] + nsn.parse::<u64>().unwrap_or(0));
                prop_assert_eq!(nz.normalize(format_e164(n).as_bytes()), Ok(n));
                prop_assert_eq!(parse_e164(&format_e164(n)), Some(n));
            }
        }
    }

    // --- micro-benchmark ----------------------------------------------------------------------

    /// `cargo test --release -- --ignored --nocapture bench_normalize`
    #[test]
    #[ignore]
    fn bench_normalize() {
        use std::hint::black_box;
        use std::time::Instant;

        const N: usize = 10_000_000;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // A mix of the shapes seen in real Vietnamese lists, ~2% of them invalid.
        let mut data = Vec::with_capacity(N * 16);
        let mut ends = Vec::with_capacity(N);
        for _ in 0..N {
            let r = next();
            let nsn = 300_000_000 + r % 700_000_000; // 9 digits, 3..9 first
            let s = match (r >> 40) % 50 {
                0..=14 => format!("0{nsn}"),
                15..=24 => format!(
                    "+84 {} {:03} {:04}",
                    nsn / 10_000_000,
                    nsn / 10_000 % 1000,
                    nsn % 10_000
                ),
                25..=32 => format!("84{nsn}"),
                33..=39 => format!(
                    "0{}-{:03}-{:03}",
                    nsn / 1_000_000,
                    nsn / 1000 % 1000,
                    nsn % 1000
                ),
                40..=44 => format!("(028) {:04} {:04}", nsn / 10_000 % 10_000, nsn % 10_000),
                45..=47 => format!("0084 {nsn}"),
                _ => format!("{}", nsn % 100_000),
            };
            data.extend_from_slice(s.as_bytes());
            ends.push(data.len());
        }
        let nz = vn();
        let t = Instant::now();
        let (mut start, mut ok, mut acc) = (0usize, 0usize, 0u64);
        for &end in &ends {
            if let Ok(v) = nz.normalize(black_box(&data[start..end])) {
                ok += 1;
                acc = acc.wrapping_add(v);
            }
            start = end;
        }
        let elapsed = t.elapsed();
        black_box(acc);
        let ns = elapsed.as_nanos() as f64 / N as f64;
        println!(
            "normalize: {N} numbers in {:.3} s = {ns:.1} ns/number ({:.1} M numbers/s), {ok} ok",
            elapsed.as_secs_f64(),
            1e3 / ns
        );
        assert!(ok > N * 9 / 10);
    }
}

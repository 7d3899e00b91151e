//! Exclusion rules: drop contacts by attribute, e.g. `segment in {VIP, GOLD, DIAMOND}`.
//!
//! Grammar (values compare case-insensitively, and may be quoted with ' or "):
//! `<column> in {v1, v2, ...}` · `<column> not in {...}` · `<column> = v` · `<column> != v`
//! (`(...)` works as well as `{...}`; `==` as well as `=`).
//!
//! Caseless means the same [`fold`] on both sides, for values and column names alike: Unicode
//! lower case, then NFC. `KHÁCH VIP` matches `khách vip`, and also `Khách VIP` typed with
//! combining accents (as macOS and some Vietnamese keyboards write it). An ASCII field, the
//! common case, is compared in place without folding it into a new string.
//!
//! Lower case is not full case folding: `ß` stays `ß`, so `STRASSE` does not match `straße`
//! (`STRAẞE` and `Straße` do). Full folding would need another Unicode table for a letter the
//! lists we import (Vietnamese, Portuguese) do not have.

use icu_normalizer::ComposingNormalizerBorrowed;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub text: String,
    pub column: String,
    pub negate: bool,
    /// The values, folded ([`fold`]).
    pub values: Vec<String>,
}

/// A rule bound to a column index of one file.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    index: usize,
    negate: bool,
    /// Folded ([`fold`]).
    values: Vec<String>,
}

/// The form both sides of a comparison take: Unicode lower case (`str::to_lowercase`), then
/// NFC, so that precomposed and decomposed accents compare equal (`Á` is U+00C1, or `A` and
/// U+0301). NFC data is ICU4X's, already in the build through `url`'s IDNA.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let nfc = ComposingNormalizerBorrowed::new_nfc();
    nfc.normalize(&s.to_lowercase()).into_owned()
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule> {
        let bad = |reason: &str| Error::BadRule {
            rule: text.to_string(),
            reason: reason.to_string(),
        };
        let t = text.trim();
        let (column, rest) = split_column(t).ok_or_else(|| {
            bad("expected `<column> in {...}`, `<column> = value` or `<column> != value`")
        })?;
        let rest = rest.trim_start();
        let lower = rest.to_ascii_lowercase();
        let (negate, list_part) = if let Some(r) = lower.strip_prefix("not in") {
            (true, Some(&rest[rest.len() - r.len()..]))
        } else if let Some(r) = lower.strip_prefix("in") {
            (false, Some(&rest[rest.len() - r.len()..]))
        } else {
            (false, None)
        };
        let (negate, values) = match list_part {
            Some(list) => {
                let list = list.trim();
                let inner = list
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .or_else(|| list.strip_prefix('(').and_then(|l| l.strip_suffix(')')))
                    .ok_or_else(|| bad("the values of `in` go between { and }"))?;
                let values: Vec<String> = inner
                    .split(',')
                    .map(unquote)
                    .filter(|v| !v.is_empty())
                    .collect();
                if values.is_empty() {
                    return Err(bad("the value list is empty"));
                }
                (negate, values)
            }
            None => {
                let (neg, v) = if let Some(v) = rest.strip_prefix("!=") {
                    (true, v)
                } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
                    (false, v)
                } else {
                    return Err(bad(
                        "expected `in`, `not in`, `=` or `!=` after the column name",
                    ));
                };
                let v = unquote(v);
                if v.is_empty() {
                    return Err(bad("missing value"));
                }
                (neg, vec![v])
            }
        };
        Ok(Rule {
            text: t.to_string(),
            column: column.to_string(),
            negate,
            values: values.iter().map(|v| fold(v)).collect(),
        })
    }

    /// Bind to a header; a missing column is an error naming the rule and the columns there are.
    pub fn compile(&self, headers: &[String], path: &std::path::Path) -> Result<CompiledRule> {
        let column = fold(&self.column);
        let index = headers
            .iter()
            .position(|h| fold(h) == column)
            .ok_or_else(|| Error::MissingColumn {
                path: path.to_path_buf(),
                column: format!("{} (named by exclusion rule {:?})", self.column, self.text),
                found: headers.join(", "),
            })?;
        Ok(CompiledRule {
            index,
            negate: self.negate,
            values: self.values.clone(),
        })
    }
}

impl CompiledRule {
    /// Does this record match (and so get excluded)?
    pub fn matches(&self, record: &csv::ByteRecord) -> bool {
        let field = record.get(self.index).unwrap_or(b"");
        let hit = if field.is_ascii() {
            // fold() of ASCII is its ASCII lower case: compare in place, no new string.
            let field = field.trim_ascii();
            self.values
                .iter()
                .any(|v| v.as_bytes().eq_ignore_ascii_case(field))
        } else {
            let field = fold(String::from_utf8_lossy(field).trim());
            self.values.contains(&field)
        };
        hit != self.negate
    }
}

fn split_column(t: &str) -> Option<(&str, &str)> {
    let end = t.find(|c: char| c.is_whitespace() || c == '=' || c == '!')?;
    let col = &t[..end];
    if col.is_empty() {
        None
    } else {
        Some((col, &t[end..]))
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    v.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn in_list_matches_case_insensitively() {
        let r = Rule::parse("segment in {VIP, GOLD, \"DIAMOND\"}").unwrap();
        assert_eq!(r.values, vec!["vip", "gold", "diamond"]);
        let c = r
            .compile(
                &["phone".into(), "Segment".into()],
                std::path::Path::new("x"),
            )
            .unwrap();
        assert!(c.matches(&rec(&["1", "vip"])));
        assert!(c.matches(&rec(&["1", " Diamond "])));
        assert!(!c.matches(&rec(&["1", "silver"])));
    }

    #[test]
    fn other_forms() {
        assert!(Rule::parse("line_type = m2m").unwrap().values == vec!["m2m"]);
        assert!(Rule::parse("line_type != voice").unwrap().negate);
        assert!(Rule::parse("tier not in (a,b)").unwrap().negate);
        assert!(Rule::parse("tier==x").is_ok());
    }

    #[test]
    fn bad_rules_say_why() {
        for bad in [
            "",
            "segment",
            "segment in VIP",
            "segment in {}",
            "segment ~ x",
            "segment =",
        ] {
            let e = Rule::parse(bad).unwrap_err().to_string();
            assert!(e.contains("bad exclusion rule"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn missing_column_is_named() {
        let r = Rule::parse("segment in {VIP}").unwrap();
        let e = r
            .compile(&["phone".into()], std::path::Path::new("list.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment") && e.contains("phone"), "{e}");
    }

    fn compiled(rule: &str, headers: &[&str]) -> CompiledRule {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        Rule::parse(rule)
            .unwrap()
            .compile(&headers, std::path::Path::new("x"))
            .unwrap()
    }

    #[test]
    fn non_ascii_values_fold_the_same_way_on_both_sides() {
        // Vietnamese: before, `KHÁCH VIP` matched no field at all (folded on one side only).
        let c = compiled("segment in {KHÁCH VIP, \"São Paulo\"}", &["phone", "segment"]);
        for hit in ["KHÁCH VIP", "khách vip", "Khách Vip", " KHÁCH VIP\u{a0}", "SÃO PAULO", "são paulo"] {
            assert!(c.matches(&rec(&["1", hit])), "{hit:?}");
        }
        for miss in ["KHACH VIP", "khách", "Sao Paulo", "vip"] {
            assert!(!c.matches(&rec(&["1", miss])), "{miss:?}");
        }
        let negated = compiled("segment not in {KHÁCH VIP}", &["phone", "segment"]);
        assert!(!negated.matches(&rec(&["1", "khách vip"])));
        assert!(negated.matches(&rec(&["1", "khách thường"])));
    }

    #[test]
    fn decomposed_accents_equal_precomposed_ones() {
        // `Á` as U+00C1, or as `A` + U+0301; `ạ` (Vietnamese) as U+1EA1, or `a` + U+0323.
        let nfd = "KHA\u{301}CH VIP";
        let c = compiled("segment = KHÁCH VIP", &["phone", "segment"]);
        assert!(c.matches(&rec(&["1", nfd])));
        let c = compiled(&format!("segment = {nfd}"), &["phone", "segment"]);
        assert!(c.matches(&rec(&["1", "khách vip"])));
        let c = compiled("hạng = ĐẠI LÝ", &["phone", "ha\u{323}ng"]);
        assert!(c.matches(&rec(&["1", "đa\u{323}i lý"])));
    }

    #[test]
    fn non_ascii_column_names_and_the_limits_of_lower_case() {
        // Column names fold too: a rule naming `PHÂN_KHÚC` binds the column `phân_khúc`.
        let c = compiled("PHÂN_KHÚC = vàng", &["phone", "phân_khúc"]);
        assert!(c.matches(&rec(&["1", "VÀNG"])));
        // German: ẞ lowers to ß, so these match; ß is not expanded to ss (not full case folding).
        let c = compiled("street = STRAẞE", &["phone", "street"]);
        assert!(c.matches(&rec(&["1", "straße"])) && c.matches(&rec(&["1", "Straße"])));
        assert!(!c.matches(&rec(&["1", "STRASSE"])));
        // A non-ASCII character whose lower case is ASCII (the Kelvin sign) is caught both ways.
        let c = compiled("unit = \u{212a}", &["phone", "unit"]);
        assert!(c.matches(&rec(&["1", "k"])) && c.matches(&rec(&["1", "K"])));
        let c = compiled("unit = k", &["phone", "unit"]);
        assert!(c.matches(&rec(&["1", "\u{212a}"])));
        // A field that is not UTF-8 matches nothing it is not, and never panics.
        let c = compiled("segment = vip", &["phone", "segment"]);
        assert!(!c.matches(&csv::ByteRecord::from(vec![&b"1"[..], &b"v\xffip"[..]])));
    }
}

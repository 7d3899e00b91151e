//! Exclusion rules: drop contacts by attribute, e.g. `segment in {VIP, GOLD, DIAMOND}`.
//!
//! Grammar (values compare case-insensitively, and may be quoted with ' or "):
//! `<column> in {v1, v2, ...}` · `<column> not in {...}` · `<column> = v` · `<column> != v`
//! (`(...)` works as well as `{...}`; `==` as well as `=`).

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub text: String,
    pub column: String,
    pub negate: bool,
    /// Lower-cased values.
    pub values: Vec<String>,
}

/// A rule bound to a column index of one file.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    index: usize,
    negate: bool,
    values: Vec<Vec<u8>>,
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
            values: values.into_iter().map(|v| v.to_lowercase()).collect(),
        })
    }

    /// Bind to a header; a missing column is an error naming the rule and the columns there are.
    pub fn compile(&self, headers: &[String], path: &std::path::Path) -> Result<CompiledRule> {
        let index = headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(&self.column))
            .ok_or_else(|| Error::MissingColumn {
                path: path.to_path_buf(),
                column: format!("{} (named by exclusion rule {:?})", self.column, self.text),
                found: headers.join(", "),
            })?;
        Ok(CompiledRule {
            index,
            negate: self.negate,
            values: self.values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        })
    }
}

impl CompiledRule {
    /// Does this record match (and so get excluded)?
    pub fn matches(&self, record: &csv::ByteRecord) -> bool {
        let field = record.get(self.index).unwrap_or(b"").trim_ascii();
        let hit = self.values.iter().any(|v| v.eq_ignore_ascii_case(field));
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
}

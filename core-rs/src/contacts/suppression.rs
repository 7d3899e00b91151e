//! Suppression lists (do-not-call, VIP, business lines ...): named lists of millions of numbers
//! shared by campaigns. Each list lives under the hash tag `{s:<name>}` in `LIST_BUCKETS` bucketed
//! integer sets (Redis intsets: 8 bytes a number). A list has generations: `replace` loads a new
//! generation and switches `{s:<name>}:gen` to it in one write, so a campaign never sees a
//! half-loaded list; `append` adds to the live generation.

use std::path::Path;
use std::sync::LazyLock;

use redis::Script;

use super::e164::Normalizer;
use super::reader::{ContactReader, Format, Rejection, MAX_REASONS};
use crate::error::{Error, Result};
use crate::keys::{self, LIST_BUCKETS, SUPPRESSION_REGISTRY};
use crate::queue::script;
use crate::store::Store;

static ADD: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../queue/lua/suppress_add.lua")));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// The file becomes the list's whole content (atomically).
    Replace,
    /// The file's numbers are added to the list.
    Append,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListReport {
    pub name: String,
    pub read: u64,
    pub added: u64,
    pub already: u64,
    pub rejected: u64,
    pub rejections: Vec<Rejection>,
    /// Numbers on the list after the load.
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListInfo {
    pub name: String,
    pub count: u64,
    pub generation: u64,
}

/// For each number: is it on any of `lists`? Two round trips: the lists' live generations, then
/// one pipelined `SISMEMBER` per number and list (plain commands cost Redis about a fifth of what
/// the same calls cost from a Lua loop).
pub fn check_any(store: &mut Store, lists: &[String], numbers: &[u64]) -> Result<Vec<bool>> {
    let mut hit = vec![false; numbers.len()];
    if lists.is_empty() || numbers.is_empty() {
        return Ok(hit);
    }
    let target = lists.join(",");
    let mut pipe = crate::store::pipe();
    for l in lists {
        pipe.cmd("GET")
            .arg(format!("{}:gen", keys::suppression_list(l)));
    }
    let gens: Vec<Option<u64>> = store.pipe(&pipe, "read list generations", &target)?;
    let mut pipe = crate::store::pipe();
    let mut asked = 0usize;
    for (l, gen) in lists.iter().zip(&gens) {
        let Some(gen) = gen else { continue }; // deleted: nothing is on it
        let base = keys::suppression_list(l);
        for n in numbers {
            pipe.cmd("SISMEMBER")
                .arg(format!("{base}:g{gen}:{}", n % LIST_BUCKETS))
                .arg(*n);
        }
        asked += 1;
    }
    if asked == 0 {
        return Ok(hit);
    }
    let flags: Vec<bool> = store.pipe(&pipe, "check suppression lists", &target)?;
    if flags.len() != asked * numbers.len() {
        return Err(Error::protocol(
            "check suppression lists",
            &target,
            "reply count differs",
        ));
    }
    for chunk in flags.chunks(numbers.len()) {
        for (h, f) in hit.iter_mut().zip(chunk) {
            *h |= *f;
        }
    }
    Ok(hit)
}

/// Each list's version: it grows whenever numbers may have been added (append, replace).
pub fn versions(store: &mut Store, lists: &[String]) -> Result<Vec<u64>> {
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = crate::store::pipe();
    for l in lists {
        pipe.cmd("GET")
            .arg(format!("{}:ver", keys::suppression_list(l)));
    }
    let v: Vec<Option<u64>> = store.pipe(&pipe, "read list versions", &lists.join(","))?;
    Ok(v.into_iter().map(Option::unwrap_or_default).collect())
}

/// Each list's version (0 if never bumped), or, if some of the lists do not exist (no live
/// generation), their names: one round trip.
pub fn versions_if_all_exist(
    store: &mut Store,
    lists: &[String],
) -> Result<std::result::Result<Vec<u64>, Vec<String>>> {
    let mut pipe = crate::store::pipe();
    for l in lists {
        let base = keys::suppression_list(l);
        pipe.cmd("GET").arg(format!("{base}:ver"));
        pipe.cmd("EXISTS").arg(format!("{base}:gen"));
    }
    let v: Vec<(Option<u64>, bool)> = if lists.is_empty() {
        Vec::new()
    } else {
        let flat: Vec<redis::Value> = store.pipe(&pipe, "read list versions", &lists.join(","))?;
        flat.chunks(2)
            .map(|p| {
                let ver = redis::from_redis_value::<Option<u64>>(p[0].clone()).unwrap_or(None);
                let there = redis::from_redis_value::<bool>(p[1].clone()).unwrap_or(false);
                (ver, there)
            })
            .collect()
    };
    let missing: Vec<String> = lists
        .iter()
        .zip(&v)
        .filter(|(_, (_, there))| !there)
        .map(|(l, _)| l.clone())
        .collect();
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    Ok(Ok(v
        .into_iter()
        .map(|(ver, _)| ver.unwrap_or_default())
        .collect()))
}

/// Names among `lists` that do not exist.
pub fn missing(store: &mut Store, lists: &[String]) -> Result<Vec<String>> {
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = crate::store::pipe();
    for l in lists {
        pipe.cmd("SISMEMBER").arg(SUPPRESSION_REGISTRY).arg(l);
    }
    let there: Vec<bool> = store.pipe(&pipe, "find suppression lists", SUPPRESSION_REGISTRY)?;
    Ok(lists
        .iter()
        .zip(there)
        .filter(|(_, t)| !t)
        .map(|(l, _)| l.clone())
        .collect())
}

/// Load a file of numbers (plain, or CSV with a number column) into list `name`. `progress` is
/// called after every batch; `false` stops the load (a replace then leaves the list as it was).
#[allow(clippy::too_many_arguments)] // the file's description (path, country, column, format) travels as is
pub fn load(
    url: &str,
    name: &str,
    path: &Path,
    country: &str,
    number_column: Option<&str>,
    format: Format,
    mode: LoadMode,
    progress: &mut dyn FnMut(&ListReport) -> bool,
) -> Result<ListReport> {
    keys::check_name("suppression list", name)?;
    let normalizer = Normalizer::for_iso(country).ok_or_else(|| Error::UnknownCountry {
        iso: country.to_string(),
    })?;
    let mut reader = ContactReader::open(path, normalizer, format, number_column, &[], false)?;
    let mut store = Store::connect(url)?;
    store.load_scripts(&[&ADD])?;
    let base = keys::suppression_list(name);
    let live: Option<u64> = store.query(
        redis::cmd("GET").arg(format!("{base}:gen")),
        "read list generation",
        &base,
    )?;
    // Replace (or a new list) fills a fresh generation and switches to it at the end.
    let gen = match (mode, live) {
        (LoadMode::Append, Some(g)) => g,
        _ => store.query(
            redis::cmd("INCR").arg(format!("{base}:gens")),
            "new list generation",
            &base,
        )?,
    };
    if live == Some(gen) {
        // Appending: numbers land on the live list from the first batch on.
        store.query::<()>(
            redis::cmd("INCR").arg(format!("{base}:ver")),
            "bump list version",
            &base,
        )?;
    }
    let mut report = ListReport {
        name: name.to_string(),
        ..Default::default()
    };
    let result = (|| -> Result<()> {
        while let Some(b) = reader.next_batch(20_000)? {
            let mut added = 0u64;
            if !b.numbers.is_empty() {
                let mut inv = ADD.prepare_invoke();
                inv.key(&base).arg(gen);
                for n in &b.numbers {
                    inv.arg(*n);
                }
                added = crate::store::int(&store.invoke(&inv, "add to suppression list", &base)?)
                    .unwrap_or(0) as u64;
            }
            report.read += b.read;
            report.rejected += b.rejected;
            report.added += added;
            report.already += b.numbers.len() as u64 - added;
            let room = MAX_REASONS.saturating_sub(report.rejections.len());
            report
                .rejections
                .extend(b.rejections.into_iter().take(room));
            if !progress(&report) {
                return Err(Error::Cancelled {
                    op: "suppression list load",
                });
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        if live != Some(gen) {
            // The new generation never went live: drop it, the list is as it was.
            drop_generation(&mut store, &base, gen)?;
        }
        return Err(e);
    }
    if live != Some(gen) {
        // One slot, one MULTI: claims see the new generation and the new version together.
        let mut pipe = crate::store::pipe();
        pipe.atomic()
            .cmd("INCR")
            .arg(format!("{base}:ver"))
            .ignore();
        pipe.cmd("SET").arg(format!("{base}:gen")).arg(gen).ignore();
        store.pipe::<()>(&pipe, "switch list generation", &base)?;
        store.query::<()>(
            redis::cmd("SADD").arg(SUPPRESSION_REGISTRY).arg(name),
            "register list",
            SUPPRESSION_REGISTRY,
        )?;
        if let Some(old) = live {
            drop_generation(&mut store, &base, old)?;
        }
    }
    report.total = count(&mut store, &base, gen)?;
    Ok(report)
}

fn count(store: &mut Store, base: &str, gen: u64) -> Result<u64> {
    let c: Option<u64> = store.query(
        redis::cmd("HGET").arg(format!("{base}:count")).arg(gen),
        "count list",
        base,
    )?;
    Ok(c.unwrap_or(0))
}

fn drop_generation(store: &mut Store, base: &str, gen: u64) -> Result<()> {
    let keys: Vec<String> = (0..LIST_BUCKETS)
        .map(|b| format!("{base}:g{gen}:{b}"))
        .collect();
    let mut pipe = crate::store::pipe();
    for chunk in keys.chunks(1024) {
        pipe.cmd("UNLINK").arg(chunk).ignore();
    }
    pipe.cmd("HDEL")
        .arg(format!("{base}:count"))
        .arg(gen)
        .ignore();
    store.pipe::<()>(&pipe, "drop list generation", base)
}

/// Every list with its size.
pub fn lists(url: &str) -> Result<Vec<ListInfo>> {
    let mut store = Store::connect(url)?;
    let mut names: Vec<String> = store.query(
        redis::cmd("SMEMBERS").arg(SUPPRESSION_REGISTRY),
        "list suppression lists",
        SUPPRESSION_REGISTRY,
    )?;
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let base = keys::suppression_list(&name);
        let gen: Option<u64> = store.query(
            redis::cmd("GET").arg(format!("{base}:gen")),
            "read list generation",
            &base,
        )?;
        let generation = gen.unwrap_or(0);
        out.push(ListInfo {
            count: count(&mut store, &base, generation)?,
            name,
            generation,
        });
    }
    Ok(out)
}

/// Remove a list; campaigns naming it then find nothing on it.
pub fn delete(url: &str, name: &str) -> Result<bool> {
    keys::check_name("suppression list", name)?;
    let mut store = Store::connect(url)?;
    let base = keys::suppression_list(name);
    let gen: Option<u64> = store.query(
        redis::cmd("GET").arg(format!("{base}:gen")),
        "read list generation",
        &base,
    )?;
    let Some(gen) = gen else { return Ok(false) };
    let mut pipe = crate::store::pipe();
    pipe.cmd("DEL").arg(format!("{base}:gen")).ignore();
    pipe.cmd("SREM")
        .arg(SUPPRESSION_REGISTRY)
        .arg(name)
        .ignore();
    store.pipe::<()>(&pipe, "delete list", &base)?;
    drop_generation(&mut store, &base, gen)?;
    Ok(true)
}

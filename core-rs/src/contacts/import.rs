//! Load a contact file into a campaign's queue: a parser thread reads and normalises batches
//! while this thread checks them against the suppression lists and loads them into Redis, so
//! parsing and Redis round trips overlap; a bounded channel keeps memory constant.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use super::e164::Normalizer;
use super::reader::{Batch, ContactReader, Format, Rejection, MAX_REASONS};
use super::rules::Rule;
use super::suppression;
use crate::error::{Error, Result};
use crate::keys;
use crate::queue::{CallQueue, OutcomePolicy, IMPORT};
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub campaign: String,
    /// Partition count when the campaign is new; `None` keeps what is stored (1 when new).
    pub partitions: Option<u32>,
    /// ISO 3166-1 alpha-2 default country for national numbers.
    pub country: String,
    pub number_column: Option<String>,
    pub format: Format,
    /// Suppression lists the campaign honours (added to those it already has).
    pub suppression_lists: Vec<String>,
    /// Exclusion rules, e.g. `segment in {VIP, GOLD, DIAMOND}`.
    pub exclusions: Vec<String>,
    /// Rows per Redis round trip.
    pub batch_size: usize,
    /// Keep the other columns as contact attributes (name, segment ...); `false` loads numbers only.
    pub attributes: bool,
}

impl ImportOptions {
    pub fn new(campaign: &str, country: &str) -> Self {
        ImportOptions {
            campaign: campaign.to_string(),
            partitions: None,
            country: country.to_string(),
            number_column: None,
            format: Format::Auto,
            suppression_lists: Vec::new(),
            exclusions: Vec::new(),
            batch_size: 10_000,
            attributes: true,
        }
    }
}

/// What an import did. `read` = `accepted + rejected + duplicates + suppressed + excluded`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub read: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub suppressed: u64,
    pub excluded: u64,
    /// The first [`MAX_REASONS`] rejections.
    pub rejections: Vec<Rejection>,
}

impl ImportReport {
    pub(crate) fn add_parsed(&mut self, b: &Batch) {
        self.read += b.read;
        self.rejected += b.rejected;
        self.excluded += b.excluded;
        let room = MAX_REASONS.saturating_sub(self.rejections.len());
        self.rejections
            .extend(b.rejections.iter().take(room).cloned());
    }
}

/// Parse and normalise a file without touching Redis (what `--dry-run` and the parse benchmark run).
/// `progress` is called after every batch; returning `false` stops the work (`Error::Cancelled`).
pub fn parse_file(
    path: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(&ImportReport) -> bool,
) -> Result<ImportReport> {
    let (normalizer, rules) = prepare(opts)?;
    let mut reader = ContactReader::open(
        path,
        normalizer,
        opts.format,
        opts.number_column.as_deref(),
        &rules,
        opts.attributes,
    )?;
    let mut report = ImportReport::default();
    while let Some(b) = reader.next_batch(opts.batch_size.max(1))? {
        report.add_parsed(&b);
        report.accepted += b.numbers.len() as u64;
        if !progress(&report) {
            return Err(Error::Cancelled { op: "parse" });
        }
    }
    Ok(report)
}

/// Import `path` into the campaign's queue on the Redis at `url`. `progress` is called after every
/// batch; returning `false` stops the import between two batches (`Error::Cancelled`, wrapped in
/// `ImportInterrupted` with what was loaded).
pub fn import_file(
    url: &str,
    path: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(&ImportReport) -> bool,
) -> Result<ImportReport> {
    let (normalizer, rules) = prepare(opts)?;
    for l in &opts.suppression_lists {
        keys::check_name("suppression list", l)?;
    }
    // Everything about the file's shape is checked before Redis is touched.
    let reader = ContactReader::open(
        path,
        normalizer,
        opts.format,
        opts.number_column.as_deref(),
        &rules,
        opts.attributes,
    )?;
    let columns = reader.attr_columns();
    {
        let mut store = Store::connect(url)?;
        let missing = suppression::missing(&mut store, &opts.suppression_lists)?;
        if !missing.is_empty() {
            return Err(Error::invalid(
                "suppression list",
                format!(
                    "{} not found: load it first (`dialer suppress NAME FILE`)",
                    missing.join(", ")
                ),
            ));
        }
    }
    let mut queue = CallQueue::create(
        url,
        &opts.campaign,
        opts.partitions,
        OutcomePolicy::default(),
    )?;
    let lock = ImportLock::take(&mut queue)?;
    let mut report = ImportReport::default();
    let result = (|| {
        let empty = is_empty(&mut queue)?;
        let lists = record_suppression(&mut queue, &opts.suppression_lists, empty)?;
        let cols_id = register_columns(&mut queue, &columns)?;
        load_file(
            &mut queue,
            reader,
            &lists,
            &cols_id,
            opts.batch_size.max(1),
            &lock,
            empty,
            &mut report,
            progress,
        )
    })();
    lock.release(&mut queue);
    match result {
        Ok(()) => Ok(report),
        Err(e) if report.read == 0 => Err(e),
        Err(e) => Err(Error::ImportInterrupted {
            campaign: opts.campaign.clone(),
            report: Box::new(report),
            source: Box::new(e),
        }),
    }
}

/// The parser thread feeds batches; this thread loads them.
#[allow(clippy::too_many_arguments)]
fn load_file(
    queue: &mut CallQueue,
    mut reader: ContactReader,
    lists: &[String],
    cols_id: &str,
    batch_size: usize,
    lock: &ImportLock,
    empty: bool,
    report: &mut ImportReport,
    progress: &mut dyn FnMut(&ImportReport) -> bool,
) -> Result<()> {
    let partitions = queue.partitions();
    // A campaign nothing was imported into yet, under the lock, can take the fast path: the
    // duplicate check runs here against the numbers of this file, and Redis gets plain
    // pipelined writes instead of a script call per row.
    let mut fresh = if empty { Some(HashSet::new()) } else { None };
    let (tx, rx) = crossbeam_channel::bounded::<Result<Batch>>(4);
    std::thread::scope(|s| {
        s.spawn(move || loop {
            let next = reader.next_batch(batch_size);
            let stop = !matches!(next, Ok(Some(_)));
            let sent = match next {
                Ok(Some(b)) => tx.send(Ok(b)).is_ok(),
                Ok(None) => false,
                Err(e) => tx.send(Err(e)).is_ok(),
            };
            if stop || !sent {
                break;
            }
        });
        // `rx` moves in here: an early return drops it, which stops the parser at its next send
        // (the scope waits for the parser, so it must not stay blocked on a full channel).
        let rx = rx;
        for batch in rx.iter() {
            let b = batch?;
            if fresh
                .as_ref()
                .is_some_and(|seen| seen.len() + b.numbers.len() > FAST_PATH_MAX)
            {
                fresh = None; // bounded memory: the rest goes through the script's HSETNX check
            }
            match fresh.as_mut() {
                Some(seen) => {
                    load_batch_fresh(queue, lists, partitions, cols_id, &b, report, seen)?
                }
                None => load_batch(queue, lists, partitions, cols_id, &b, report)?,
            }
            lock.renew(queue)?;
            if !progress(report) {
                return Err(Error::Cancelled { op: "import" });
            }
        }
        Ok(())
    })
}

fn prepare(opts: &ImportOptions) -> Result<(Normalizer, Vec<Rule>)> {
    keys::check_name("campaign id", &opts.campaign)?;
    let normalizer = Normalizer::for_iso(&opts.country).ok_or_else(|| Error::UnknownCountry {
        iso: opts.country.clone(),
    })?;
    let rules = opts
        .exclusions
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>>>()?;
    Ok((normalizer, rules))
}

/// Store the attribute column names once per partition under a short id derived from them.
fn register_columns(queue: &mut CallQueue, columns: &[String]) -> Result<String> {
    if columns.is_empty() {
        return Ok(String::new());
    }
    let joined = columns.join("\x1f");
    // FNV-1a: the same header always gets the same id.
    let id = joined.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let id = format!("{:x}", id & 0xffff_ffff);
    let mut pipe = redis::pipe();
    for p in 0..queue.partitions() {
        pipe.cmd("HSET")
            .arg(format!("{}:cols", keys::partition(queue.campaign(), p)))
            .arg(&id)
            .arg(&joined)
            .ignore();
    }
    let campaign = queue.campaign().to_string();
    queue
        .store()
        .pipe::<()>(&pipe, "register attribute columns", &campaign)?;
    Ok(id)
}

/// Distinct numbers the fast path remembers at most: a `HashSet<u64>` of 2^24 slots (9 bytes
/// each, about 150 MB) holds up to 14.6M before it would double; past this the rest of the file
/// goes through the script's HSETNX check, so memory stays bounded whatever the file's size.
const FAST_PATH_MAX: usize = 14_000_000;

/// The campaign's lists become its old ones plus `added`. Per list, record the version every
/// queued contact will have been checked against once this import is done: the version now, if
/// the campaign is empty or was checked against this same version before; otherwise "x" (claims
/// then check that list, see `CallQueue::claim`).
fn record_suppression(queue: &mut CallQueue, added: &[String], empty: bool) -> Result<Vec<String>> {
    let (old, old_checked) = queue.suppression_state()?;
    let mut lists = old.clone();
    for l in added {
        if !lists.contains(l) {
            lists.push(l.clone());
        }
    }
    let now = suppression::versions(queue.store(), &lists)?;
    let checked: Vec<String> = lists
        .iter()
        .zip(&now)
        .map(|(l, v)| {
            let v = v.to_string();
            let before = old
                .iter()
                .position(|o| o == l)
                .and_then(|i| old_checked.get(i));
            if empty || before == Some(&v) {
                v
            } else {
                "x".to_string()
            }
        })
        .collect();
    queue.record_suppression(&lists, &checked)?;
    Ok(lists)
}

/// Did no import ever load contacts into this campaign?
fn is_empty(queue: &mut CallQueue) -> Result<bool> {
    let mut pipe = redis::pipe();
    for p in 0..queue.partitions() {
        pipe.cmd("HEXISTS")
            .arg(format!("{}:stat", keys::partition(queue.campaign(), p)))
            .arg("imported");
    }
    let campaign = queue.campaign().to_string();
    let loaded: Vec<bool> = queue
        .store()
        .pipe(&pipe, "check campaign is empty", &campaign)?;
    Ok(!loaded.into_iter().any(|l| l))
}

/// One import at a time per campaign: `{c:<id>}:importing` holds `host:pid:nanos` of the
/// importer, with a TTL renewed after every batch. A lock left by an importer that died on this
/// host (its pid is gone) is taken over at once; one from another host expires after `TTL_MS`.
struct ImportLock {
    key: String,
    token: String,
}

static TAKE_OVER: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false",
    )
});

impl ImportLock {
    const TTL_MS: u64 = 60_000;

    fn take(queue: &mut CallQueue) -> Result<Self> {
        let key = format!("{{c:{}}}:importing", queue.campaign());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let token = format!("{}:{}:{nanos}", hostname(), std::process::id());
        let set = |q: &mut CallQueue| -> Result<Option<String>> {
            q.store().query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(Self::TTL_MS),
                "take import lock",
                &key,
            )
        };
        if set(queue)?.is_some() {
            return Ok(ImportLock { key, token });
        }
        let holder: Option<String> =
            queue
                .store()
                .query(redis::cmd("GET").arg(&key), "read import lock", &key)?;
        let taken = match holder.as_deref() {
            None => set(queue)?.is_some(),
            Some(h) if holder_is_dead(h) => {
                let mut inv = TAKE_OVER.prepare_invoke();
                inv.key(&key).arg(h).arg(&token).arg(Self::TTL_MS);
                !matches!(
                    queue.store().invoke(&inv, "take over import lock", &key)?,
                    redis::Value::Nil
                )
            }
            Some(_) => false,
        };
        if !taken {
            return Err(Error::invalid(
                "import",
                format!(
                    "another import into campaign {:?} is running ({}); imports into one campaign run one at a time",
                    queue.campaign(),
                    holder.unwrap_or_default()
                ),
            ));
        }
        Ok(ImportLock { key, token })
    }

    fn renew(&self, queue: &mut CallQueue) -> Result<()> {
        queue.store().query::<()>(
            redis::cmd("PEXPIRE").arg(&self.key).arg(Self::TTL_MS),
            "renew import lock",
            &self.key,
        )
    }

    /// Best effort: an import that failed because Redis went away leaves the lock to expire.
    fn release(&self, queue: &mut CallQueue) {
        let mine: Result<Option<String>> = queue.store().query(
            redis::cmd("GET").arg(&self.key),
            "read import lock",
            &self.key,
        );
        if matches!(mine, Ok(Some(t)) if t == self.token) {
            let _ = queue.store().query::<()>(
                redis::cmd("DEL").arg(&self.key),
                "release import lock",
                &self.key,
            );
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A holder `host:pid:nanos` on this host whose process no longer exists.
fn holder_is_dead(holder: &str) -> bool {
    let mut f = holder.split(':');
    let (Some(host), Some(pid)) = (f.next(), f.next()) else {
        return false;
    };
    !host.is_empty()
        && host == hostname()
        && pid.parse::<u32>().is_ok()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

/// The fast path for a campaign that was empty when this import began (under its lock): numbers
/// already seen in this file are duplicates, the others are new, so plain HSETs and one RPUSH do
/// the work, in one MULTI/EXEC per partition (a batch is loaded whole or not at all). A batch's
/// attributes go into one string per partition, `P:ap:<page>`, and each contact's state points
/// into it (`@page.offset.length`): one write per contact, as for a file of numbers only.
fn load_batch_fresh(
    queue: &mut CallQueue,
    lists: &[String],
    partitions: u32,
    cols_id: &str,
    b: &Batch,
    report: &mut ImportReport,
    seen: &mut HashSet<u64>,
) -> Result<()> {
    let hit = suppression::check_any(queue.store(), lists, &b.numbers)?; // all false without lists
    let bases: Vec<String> = (0..partitions)
        .map(|p| keys::partition(queue.campaign(), p))
        .collect();
    let mut pipes: Vec<redis::Pipeline> = (0..partitions)
        .map(|_| {
            let mut p = redis::pipe();
            p.atomic();
            p
        })
        .collect();
    let mut ready: Vec<Vec<u64>> = vec![Vec::new(); partitions as usize];
    let (mut suppressed, mut dups) = (0u64, 0u64);
    let pages = if b.attrs.iter().any(|a| !a.is_empty()) {
        new_pages(queue, &bases)?
    } else {
        Vec::new()
    };
    let mut page_text: Vec<String> = vec![String::new(); pages.len()];
    let mut state = String::new();
    for (i, n) in b.numbers.iter().enumerate() {
        if hit[i] {
            suppressed += 1;
            continue;
        }
        if !seen.insert(*n) {
            dups += 1;
            continue;
        }
        let p = keys::partition_of(*n, partitions) as usize;
        let bucket = n % keys::BUCKETS;
        state.clear();
        if let Some(a) = b.attrs.get(i).filter(|a| !a.is_empty()) {
            let text = &mut page_text[p];
            let off = text.len();
            text.push_str(cols_id);
            text.push('\x1f');
            text.push_str(a);
            let _ = write!(state, "@{}.{off}.{}", pages[p], text.len() - off);
        }
        pipes[p]
            .cmd("HSET")
            .arg(format!("{}:k:{bucket}", bases[p]))
            .arg(*n)
            .arg(&state)
            .ignore();
        ready[p].push(*n);
    }
    for (p, pipe) in pipes.iter_mut().enumerate() {
        if ready[p].is_empty() {
            continue;
        }
        for chunk in ready[p].chunks(1000) {
            pipe.cmd("RPUSH")
                .arg(format!("{}:ready", bases[p]))
                .arg(chunk)
                .ignore();
        }
        if let Some(text) = page_text.get(p).filter(|t| !t.is_empty()) {
            pipe.cmd("SET")
                .arg(format!("{}:ap:{}", bases[p], pages[p]))
                .arg(text)
                .ignore();
        }
        pipe.cmd("HINCRBY")
            .arg(format!("{}:stat", bases[p]))
            .arg("imported")
            .arg(ready[p].len())
            .ignore();
        queue.store().pipe::<()>(pipe, "import", &bases[p])?;
        report.accepted += ready[p].len() as u64; // counted as each partition's part lands
    }
    report.add_parsed(b);
    report.duplicates += dups;
    report.suppressed += suppressed;
    Ok(())
}

/// A new attribute page number for each partition (`INCR P:apseq`; the key's presence also tells
/// the claim script that the partition holds attributes).
fn new_pages(queue: &mut CallQueue, bases: &[String]) -> Result<Vec<u64>> {
    let mut pipe = redis::pipe();
    for base in bases {
        pipe.cmd("INCR").arg(format!("{base}:apseq"));
    }
    let campaign = queue.campaign().to_string();
    queue.store().pipe(&pipe, "number attribute pages", &campaign)
}

/// Suppression check, then one import script per partition, all in one pipeline.
fn load_batch(
    queue: &mut CallQueue,
    lists: &[String],
    partitions: u32,
    cols_id: &str,
    b: &Batch,
    report: &mut ImportReport,
) -> Result<()> {
    let hit = suppression::check_any(queue.store(), lists, &b.numbers)?; // all false without lists
    let mut per_part: Vec<redis::ScriptInvocation<'_>> = (0..partitions)
        .map(|p| {
            let mut inv = IMPORT.prepare_invoke();
            inv.key(keys::partition(queue.campaign(), p)).arg(cols_id);
            inv
        })
        .collect();
    let mut used = vec![false; partitions as usize];
    let mut suppressed = 0u64;
    for (i, n) in b.numbers.iter().enumerate() {
        if hit[i] {
            suppressed += 1;
            continue;
        }
        let p = keys::partition_of(*n, partitions) as usize;
        used[p] = true;
        per_part[p]
            .arg(*n)
            .arg(b.attrs.get(i).map_or("", String::as_str));
    }
    let mut pipe = redis::pipe();
    for (p, inv) in per_part.iter().enumerate() {
        if used[p] {
            pipe.invoke_script(inv);
        }
    }
    let (mut added, mut dups) = (0u64, 0u64);
    if used.iter().any(|u| *u) {
        let campaign = queue.campaign().to_string();
        let replies: Vec<(u64, u64)> = queue.store().pipe(&pipe, "import", &campaign)?;
        for (a, d) in replies {
            added += a;
            dups += d;
        }
    }
    report.add_parsed(b);
    report.accepted += added;
    report.duplicates += dups;
    report.suppressed += suppressed;
    Ok(())
}

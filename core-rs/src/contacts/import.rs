//! Load a contact file into a campaign's queue: a parser thread reads and normalises batches
//! while this thread checks them against the suppression lists and loads them into Redis, so
//! parsing and Redis round trips overlap; a bounded channel keeps memory constant.

use std::path::Path;

use super::e164::Normalizer;
use super::reader::{Batch, ContactReader, Format, Rejection, MAX_REASONS};
use super::rules::Rule;
use super::suppression;
use crate::error::{Error, Result};
use crate::keys;
use crate::queue::{CallQueue, OutcomePolicy, IMPORT};

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
        self.rejections.extend(b.rejections.iter().take(room).cloned());
    }
}

/// Parse and normalise a file without touching Redis (what `--dry-run` and the parse benchmark run).
/// `progress` is called after every batch; returning `false` stops the work (`Error::Cancelled`).
pub fn parse_file(path: &Path, opts: &ImportOptions, progress: &mut dyn FnMut(&ImportReport) -> bool) -> Result<ImportReport> {
    let (normalizer, rules) = prepare(opts)?;
    let mut reader = ContactReader::open(path, normalizer, opts.format, opts.number_column.as_deref(), &rules, true)?;
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
pub fn import_file(url: &str, path: &Path, opts: &ImportOptions, progress: &mut dyn FnMut(&ImportReport) -> bool) -> Result<ImportReport> {
    let (normalizer, rules) = prepare(opts)?;
    for l in &opts.suppression_lists {
        keys::check_name("suppression list", l)?;
    }
    // Everything about the file's shape is checked before Redis is touched.
    let mut reader = ContactReader::open(path, normalizer, opts.format, opts.number_column.as_deref(), &rules, true)?;
    let columns = reader.attr_columns();
    let mut queue = CallQueue::create(url, &opts.campaign, opts.partitions, OutcomePolicy::default())?;
    let partitions = queue.partitions();
    let missing = suppression::missing(queue.store(), &opts.suppression_lists)?;
    if !missing.is_empty() {
        return Err(Error::invalid(
            "suppression list",
            format!("{} not found: load it first (`dialer suppress NAME FILE`)", missing.join(", ")),
        ));
    }
    let mut lists = queue.suppression_lists()?;
    for l in &opts.suppression_lists {
        if !lists.contains(l) {
            lists.push(l.clone());
        }
    }
    queue.set_suppression_lists(&lists)?;
    let cols_id = register_columns(&mut queue, &columns)?;

    let batch_size = opts.batch_size.max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Result<Batch>>(4);
    let mut report = ImportReport::default();
    let result = std::thread::scope(|s| {
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
            load_batch(&mut queue, &lists, partitions, &cols_id, &b, &mut report)?;
            if !progress(&report) {
                return Err(Error::Cancelled { op: "import" });
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(report),
        Err(e) if report.read == 0 => Err(e),
        Err(e) => Err(Error::ImportInterrupted { campaign: opts.campaign.clone(), report: Box::new(report), source: Box::new(e) }),
    }
}

fn prepare(opts: &ImportOptions) -> Result<(Normalizer, Vec<Rule>)> {
    keys::check_name("campaign id", &opts.campaign)?;
    let normalizer = Normalizer::for_iso(&opts.country).ok_or_else(|| Error::UnknownCountry { iso: opts.country.clone() })?;
    let rules = opts.exclusions.iter().map(|r| Rule::parse(r)).collect::<Result<Vec<_>>>()?;
    Ok((normalizer, rules))
}

/// Store the attribute column names once per partition under a short id derived from them.
fn register_columns(queue: &mut CallQueue, columns: &[String]) -> Result<String> {
    if columns.is_empty() {
        return Ok(String::new());
    }
    let joined = columns.join("\x1f");
    // FNV-1a: the same header always gets the same id.
    let id = joined.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let id = format!("{:x}", id & 0xffff_ffff);
    let mut pipe = redis::pipe();
    for p in 0..queue.partitions() {
        pipe.cmd("HSET").arg(format!("{}:cols", keys::partition(queue.campaign(), p))).arg(&id).arg(&joined).ignore();
    }
    let campaign = queue.campaign().to_string();
    queue.store().pipe::<()>(&pipe, "register attribute columns", &campaign)?;
    Ok(id)
}

/// Suppression check, then one import script per partition, all in one pipeline.
fn load_batch(queue: &mut CallQueue, lists: &[String], partitions: u32, cols_id: &str, b: &Batch, report: &mut ImportReport) -> Result<()> {
    let hit = if lists.is_empty() || b.numbers.is_empty() {
        vec![false; b.numbers.len()]
    } else {
        suppression::check_any(queue.store(), lists, &b.numbers)?
    };
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
        per_part[p].arg(*n).arg(b.attrs.get(i).map_or("", String::as_str));
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

//! Load a contact file into a campaign's queue: a parser thread reads and normalises batches
//! while this thread checks them against the suppression lists and loads them into Redis, so
//! parsing and Redis round trips overlap; a bounded channel keeps memory constant.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use redis::Value;

use super::e164::Normalizer;
use super::reader::{Batch, ContactReader, Format, Rejection, MAX_REASONS};
use super::rules::Rule;
use super::suppression;
use crate::error::{Error, Result};
use crate::keys;
use crate::queue::{CallQueue, OutcomePolicy, IMPORT};
use crate::store::{push_u64, Packed, Store};

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
    /// Add another report's counts (its first rejections while there is room).
    fn absorb(&mut self, o: ImportReport) {
        self.read += o.read;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.duplicates += o.duplicates;
        self.suppressed += o.suppressed;
        self.excluded += o.excluded;
        let room = MAX_REASONS.saturating_sub(self.rejections.len());
        self.rejections.extend(o.rejections.into_iter().take(room));
    }

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
    let url = queue.store().url().to_string();
    let mut fresh = if empty {
        Some(FreshLoader::new(queue, &url)?)
    } else {
        None
    };
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
        let result = (|| {
            for batch in rx.iter() {
                let b = batch?;
                if fresh
                    .as_ref()
                    .is_some_and(|f| f.seen.len() + b.numbers.len() > FAST_PATH_MAX)
                {
                    // Bounded memory: the rest goes through the script's HSETNX check.
                    if let Some(mut f) = fresh.take() {
                        f.finish(queue, report)?;
                    }
                }
                match fresh.as_mut() {
                    Some(f) => f.load(queue, lists, cols_id, lock, &b, report)?,
                    None => {
                        load_batch(queue, lists, partitions, cols_id, &b, report)?;
                        lock.renew(queue)?;
                    }
                }
                if !progress(report) {
                    return Err(Error::Cancelled { op: "import" });
                }
            }
            Ok(())
        })();
        // The last batch's replies (or, after an error, what the batch in flight loaded).
        let last = match fresh.as_mut() {
            Some(f) => f.finish(queue, report),
            None => Ok(()),
        };
        result?;
        last?;
        progress(report);
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
    let mut pipe = crate::store::pipe();
    for p in 0..queue.partitions() {
        pipe.cmd("HSET")
            .arg(format!("{}:cols", queue.base(p)))
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
    let mut pipe = crate::store::pipe();
    for p in 0..queue.partitions() {
        pipe.cmd("HEXISTS")
            .arg(format!("{}:stat", queue.base(p)))
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
///
/// Batches overlap with Redis: batch N+1 is encoded (by hand, into one RESP buffer) while Redis
/// runs batch N; then N's replies are read and N+1 is sent. At most one batch is in flight, and
/// nothing else is sent on the queue's connection meanwhile (the lock's PEXPIRE rides with each
/// batch; suppression checks and page numbers go through a second connection).
struct FreshLoader {
    seen: HashSet<u64, BuildHasherDefault<NumberHasher>>,
    side: Store,
    /// Per partition: `P:k:`, `P:ap:`, `P:ready`, `P:stat`, `P:apseq`.
    keys: Vec<[String; 5]>,
    /// Per partition: the batch's HSETs, its attribute page, its new numbers, page ids reserved
    /// (next, end).
    hsets: Vec<Packed>,
    text: Vec<Vec<u8>>,
    ready: Vec<Vec<u64>>,
    pages: Vec<(u64, u64)>,
    out: Packed,
    state: Vec<u8>,
    inflight: Option<InFlight>,
}

/// A batch sent whose replies are not read yet.
struct InFlight {
    /// Per partition written: replies it takes (MULTI ... EXEC) and contacts it adds.
    groups: Vec<(usize, u64)>,
    /// Replies after the groups (the lock's PEXPIRE).
    tail: usize,
    /// The batch's counts but `accepted` (each partition's part counts once its EXEC succeeded).
    done: ImportReport,
}

/// Hashes a phone number (a u64 whose low digits vary most) with one multiply: SipHash's
/// resistance to chosen keys buys nothing for a file's own numbers and cost the loader 5 %.
#[derive(Default)]
struct NumberHasher(u64);

impl Hasher for NumberHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Page ids reserved per round trip (`INCRBY P:apseq`).
const PAGE_IDS: u64 = 256;

impl FreshLoader {
    fn new(queue: &CallQueue, url: &str) -> Result<Self> {
        let parts = queue.partitions() as usize;
        let keys = (0..queue.partitions())
            .map(|p| {
                let b = queue.base(p);
                [
                    format!("{b}:k:"),
                    format!("{b}:ap:"),
                    format!("{b}:ready"),
                    format!("{b}:stat"),
                    format!("{b}:apseq"),
                ]
            })
            .collect();
        Ok(FreshLoader {
            seen: HashSet::default(),
            side: Store::connect(url)?,
            keys,
            hsets: (0..parts).map(|_| Packed::default()).collect(),
            text: vec![Vec::new(); parts],
            ready: vec![Vec::new(); parts],
            pages: vec![(0, 0); parts],
            out: Packed::default(),
            state: Vec::new(),
            inflight: None,
        })
    }

    /// A page id for partition `p`'s part of this batch.
    fn page(&mut self, p: usize) -> Result<u64> {
        let (next, end) = &mut self.pages[p];
        if *next == *end {
            let key = &self.keys[p][4];
            let top: u64 = self.side.query(
                redis::cmd("INCRBY").arg(key).arg(PAGE_IDS),
                "number attribute pages",
                key,
            )?;
            (*next, *end) = (top + 1 - PAGE_IDS, top + 1);
        }
        *next += 1;
        Ok(*next - 1)
    }

    /// Encode batch `b` (checking it against the lists on the side connection), read the replies
    /// of the batch before, then send this one.
    fn load(
        &mut self,
        queue: &mut CallQueue,
        lists: &[String],
        cols_id: &str,
        lock: &ImportLock,
        b: &Batch,
        report: &mut ImportReport,
    ) -> Result<()> {
        let hit = suppression::check_any(&mut self.side, lists, &b.numbers)?; // all false without lists
        let partitions = queue.partitions();
        let mut done = ImportReport::default();
        done.add_parsed(b);
        for p in 0..self.hsets.len() {
            self.hsets[p].clear();
            self.text[p].clear();
            self.ready[p].clear();
        }
        let mut page: Vec<Option<u64>> = vec![None; self.hsets.len()];
        for (i, n) in b.numbers.iter().enumerate() {
            if hit[i] {
                done.suppressed += 1;
                continue;
            }
            if !self.seen.insert(*n) {
                done.duplicates += 1;
                continue;
            }
            let p = keys::partition_of(*n, partitions) as usize;
            self.state.clear();
            if let Some(a) = b.attrs.get(i).filter(|a| !a.is_empty()) {
                let id = match page[p] {
                    Some(id) => id,
                    None => *page[p].insert(self.page(p)?),
                };
                let text = &mut self.text[p];
                let off = text.len();
                text.extend_from_slice(cols_id.as_bytes());
                text.push(0x1f);
                text.extend_from_slice(a.as_bytes());
                self.state.push(b'@');
                for (i, v) in [id, off as u64, (text.len() - off) as u64]
                    .into_iter()
                    .enumerate()
                {
                    if i > 0 {
                        self.state.push(b'.');
                    }
                    push_u64(&mut self.state, v);
                }
            }
            self.hsets[p]
                .cmd(4)
                .arg(b"HSET")
                .arg_key(&self.keys[p][0], n % keys::BUCKETS)
                .arg_u64(*n)
                .arg(&self.state);
            self.ready[p].push(*n);
        }
        self.out.clear();
        let mut groups = Vec::new();
        for (p, id) in page.iter().enumerate() {
            let ready = &self.ready[p];
            if ready.is_empty() {
                continue;
            }
            let [_, ap, ready_key, stat, _] = &self.keys[p];
            let before = self.out.count();
            self.out.cmd(1).arg(b"MULTI");
            self.out.extend(&self.hsets[p]);
            if let Some(id) = id.filter(|_| !self.text[p].is_empty()) {
                self.out
                    .cmd(3)
                    .arg(b"SET")
                    .arg_key(ap, id)
                    .arg(&self.text[p]);
            }
            for chunk in ready.chunks(1000) {
                self.out
                    .cmd(2 + chunk.len())
                    .arg(b"RPUSH")
                    .arg(ready_key.as_bytes());
                for n in chunk {
                    self.out.arg_u64(*n);
                }
            }
            self.out
                .cmd(4)
                .arg(b"HINCRBY")
                .arg(stat.as_bytes())
                .arg(b"imported")
                .arg_u64(ready.len() as u64);
            self.out.cmd(1).arg(b"EXEC");
            groups.push((self.out.count() - before, ready.len() as u64));
        }
        self.out
            .cmd(3)
            .arg(b"PEXPIRE")
            .arg(lock.key.as_bytes())
            .arg_u64(ImportLock::TTL_MS);
        self.finish(queue, report)?;
        let campaign = queue.campaign().to_string();
        queue.store().send(&self.out, "import", &campaign)?;
        self.inflight = Some(InFlight {
            groups,
            tail: 1,
            done,
        });
        Ok(())
    }

    /// Read the replies of the batch in flight, if any, and count what it loaded.
    fn finish(&mut self, queue: &mut CallQueue, report: &mut ImportReport) -> Result<()> {
        let Some(f) = self.inflight.take() else {
            return Ok(());
        };
        let campaign = queue.campaign().to_string();
        let total = f.groups.iter().map(|g| g.0).sum::<usize>() + f.tail;
        let store = queue.store();
        let replies = store.recv(total, "import", &campaign)?;
        let mut err = None;
        let mut at = 0;
        for (count, added) in f.groups {
            let group = &replies[at..at + count];
            at += count;
            match group
                .iter()
                .find_map(|v| store.reply_error(v, "import", &campaign))
            {
                // A MULTI whose EXEC answered an array of results landed whole.
                None if matches!(group.last(), Some(Value::Array(_))) => report.accepted += added,
                None => {
                    err = err
                        .or_else(|| Some(Error::protocol("import", &campaign, "EXEC did not run")))
                }
                Some(e) => err = err.or(Some(e)),
            }
        }
        if let Some(e) = replies[at..]
            .iter()
            .find_map(|v| store.reply_error(v, "renew import lock", &campaign))
        {
            err = err.or(Some(e));
        }
        match err {
            Some(e) => Err(e),
            None => {
                report.absorb(f.done);
                Ok(())
            }
        }
    }
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
            inv.key(queue.base(p)).arg(cols_id);
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
    let mut pipe = crate::store::pipe();
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

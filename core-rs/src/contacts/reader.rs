//! Streaming reader for contact files: a CSV with a header row (one column holds the number, the
//! others become attributes) or a plain file of one number per line, either of them possibly
//! gzip-compressed. Memory stays constant
//! whatever the file's size: rows are read into fixed-size batches, a row is at most
//! [`MAX_ROW_BYTES`] (a longer one stops the read: one unbounded field would otherwise be held
//! whole), a contact's attributes at most [`MAX_ATTR_BYTES`] (a longer row is rejected), and a
//! gzip file may expand at most [`MAX_GZIP_RATIO`] times.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::e164::{Normalizer, Reject};
use super::rules::{CompiledRule, Rule};
use crate::error::{Error, Result};

/// Header names recognised as the number column when none is given.
pub const NUMBER_COLUMNS: &[&str] = &[
    "phone",
    "number",
    "msisdn",
    "phone_number",
    "mobile",
    "tel",
    "telephone",
    "e164",
];

/// How many rejection reasons a report keeps.
pub const MAX_REASONS: usize = 100;

/// The longest row read (quoted newlines included): real contact rows are under a kilobyte.
pub const MAX_ROW_BYTES: u64 = 1 << 20;
/// A contact's attributes, joined, at most: they are stored in Redis with each contact.
pub const MAX_ATTR_BYTES: usize = 4096;
/// A gzip file expands at most this many times its size (CSV compresses 5-10 times; a
/// decompression bomb thousands), or to 64 MiB, whichever is more.
pub const MAX_GZIP_RATIO: u64 = 100;
/// What the buffers between the file and the CSV parser may hold ahead of the row being read.
const READ_AHEAD: u64 = 2 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Decide from the first line.
    Auto,
    Csv,
    Plain,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "auto" => Ok(Format::Auto),
            "csv" => Ok(Format::Csv),
            "plain" => Ok(Format::Plain),
            _ => Err(Error::invalid(
                "format",
                format!("{s:?}: use auto, csv or plain"),
            )),
        }
    }
}

/// One rejected line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub value: String,
    pub reason: String,
}

/// Rows read since the previous batch.
#[derive(Debug, Default)]
pub struct Batch {
    pub numbers: Vec<u64>,
    /// Attribute values joined by `\x1f`, one per number ("" when the file has no attributes).
    pub attrs: Vec<String>,
    pub read: u64,
    pub rejected: u64,
    pub excluded: u64,
    /// Reasons, while the reader has kept fewer than [`MAX_REASONS`].
    pub rejections: Vec<Rejection>,
}

pub struct ContactReader {
    path: PathBuf,
    rdr: csv::Reader<Box<dyn Read + Send>>,
    normalizer: Normalizer,
    number_col: usize,
    fields: usize,
    attr_cols: Vec<usize>,
    headers: Vec<String>,
    rules: Vec<CompiledRule>,
    keep_attrs: bool,
    reasons_kept: usize,
    record: csv::ByteRecord,
    /// Where the next row starts in the text, for the row-length bound ([`Bounded`]).
    row_start: Arc<AtomicU64>,
}

/// The file's text as the CSV parser reads it, refusing a row longer than [`MAX_ROW_BYTES`]
/// (from `row_start`, which the reader moves on after each row) and more text in all than
/// `max_total`.
struct Bounded<R> {
    inner: R,
    read: u64,
    row_start: Arc<AtomicU64>,
    max_total: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max_total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the gzip file expands to more than {} bytes ({MAX_GZIP_RATIO} times its size): \
                     not a contact list",
                    self.max_total
                ),
            ));
        }
        let row = self
            .read
            .saturating_sub(self.row_start.load(Ordering::Relaxed));
        if row > MAX_ROW_BYTES + READ_AHEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a row longer than {MAX_ROW_BYTES} bytes (an unterminated quote, or not a contact list)"),
            ));
        }
        Ok(n)
    }
}

impl ContactReader {
    /// Open `path`, read the header, find the number column and bind the exclusion rules: every
    /// problem with the file's shape is reported here, before anything is loaded.
    pub fn open(
        path: &Path,
        normalizer: Normalizer,
        format: Format,
        number_column: Option<&str>,
        rules: &[Rule],
        keep_attrs: bool,
    ) -> Result<Self> {
        let row_start = Arc::new(AtomicU64::new(0));
        let mut buf = open_text(path, row_start.clone())?;
        let first = first_line(&mut buf, path)?;
        let delimiter = sniff_delimiter(&first);
        let plain = match format {
            Format::Plain => true,
            Format::Csv => false,
            Format::Auto => {
                number_column.is_none() && delimiter.is_none() && looks_like_number(&first)
            }
        };
        if plain && !rules.is_empty() {
            return Err(Error::BadRule {
                rule: rules[0].text.clone(),
                reason: format!(
                    "{} is a plain list of numbers: it has no columns to match",
                    path.display()
                ),
            });
        }
        let reader: Box<dyn Read + Send> = Box::new(buf);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(!plain)
            .flexible(true)
            .delimiter(if plain {
                b'\x1e'
            } else {
                delimiter.unwrap_or(b',')
            })
            .quoting(!plain)
            .buffer_capacity(1 << 20)
            .from_reader(reader);
        let (headers, number_col) = if plain {
            (Vec::new(), 0)
        } else {
            let h = rdr.byte_headers().map_err(|e| csv_error(path, &e, 1))?;
            let headers: Vec<String> = h
                .iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_string())
                .collect();
            let found = headers.join(", ");
            let idx = match number_column {
                Some(col) => headers.iter().position(|h| h.eq_ignore_ascii_case(col)),
                None => headers
                    .iter()
                    .position(|h| NUMBER_COLUMNS.iter().any(|n| h.eq_ignore_ascii_case(n))),
            };
            let Some(idx) = idx else {
                let column = match number_column {
                    Some(c) => c.to_string(),
                    None => format!(
                        "for the number (looked for {}; name it with --number-column)",
                        NUMBER_COLUMNS.join(", ")
                    ),
                };
                return Err(Error::MissingColumn {
                    path: path.to_path_buf(),
                    column,
                    found,
                });
            };
            (headers, idx)
        };
        let rules = rules
            .iter()
            .map(|r| r.compile(&headers, path))
            .collect::<Result<Vec<_>>>()?;
        let attr_cols = if keep_attrs {
            (0..headers.len()).filter(|i| *i != number_col).collect()
        } else {
            Vec::new()
        };
        Ok(ContactReader {
            path: path.to_path_buf(),
            rdr,
            normalizer,
            number_col,
            fields: headers.len(),
            attr_cols,
            headers,
            rules,
            keep_attrs,
            reasons_kept: 0,
            record: csv::ByteRecord::new(),
            row_start,
        })
    }

    /// Names of the attribute columns, in the order of the values in [`Batch::attrs`].
    pub fn attr_columns(&self) -> Vec<String> {
        self.attr_cols
            .iter()
            .map(|i| self.headers[*i].clone())
            .collect()
    }

    /// Read up to `max` accepted numbers (plus the lines rejected or excluded on the way).
    /// `None` at the end of the file.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        let mut b = Batch::default();
        let mut done = false;
        while b.numbers.len() < max {
            let more = match self.rdr.read_byte_record(&mut self.record) {
                Ok(more) => more,
                // The row being read starts where the reader is (an I/O error has no position).
                Err(e) => return Err(csv_error(&self.path, &e, self.rdr.position().line())),
            };
            if !more {
                done = true;
                break;
            }
            self.row_start
                .store(self.rdr.position().byte(), Ordering::Relaxed);
            b.read += 1;
            let line = self.record.position().map_or(0, |p| p.line());
            if self.fields > 0 && self.record.len() != self.fields {
                let reason = format!(
                    "expected {} fields, found {}",
                    self.fields,
                    self.record.len()
                );
                self.reject(&mut b, line, None, reason);
                continue;
            }
            let parsed = self
                .normalizer
                .normalize(self.record.get(self.number_col).unwrap_or(b""));
            match parsed {
                Ok(n) => {
                    if self.rules.iter().any(|r| r.matches(&self.record)) {
                        b.excluded += 1;
                        continue;
                    }
                    if self.keep_attrs {
                        let attrs = self.join_attrs();
                        if attrs.len() > MAX_ATTR_BYTES {
                            let reason = format!(
                                "attributes of {} bytes: at most {MAX_ATTR_BYTES} per contact",
                                attrs.len()
                            );
                            self.reject(&mut b, line, None, reason);
                            continue;
                        }
                        b.attrs.push(attrs);
                    }
                    b.numbers.push(n);
                }
                Err(why) => {
                    let raw = self.record.get(self.number_col).unwrap_or(b"").to_vec();
                    self.reject_number(&mut b, line, &raw, why);
                }
            }
        }
        if done && b.read == 0 {
            return Ok(None);
        }
        Ok(Some(b))
    }

    fn join_attrs(&self) -> String {
        if self.attr_cols.is_empty() {
            return String::new();
        }
        let mut s = String::new();
        for (k, i) in self.attr_cols.iter().enumerate() {
            if k > 0 {
                s.push('\x1f');
            }
            let v = String::from_utf8_lossy(self.record.get(*i).unwrap_or(b""));
            s.extend(
                v.trim()
                    .chars()
                    .map(|c| if c == '\x1f' || c == '\x1e' { ' ' } else { c }),
            );
        }
        s
    }

    #[cold]
    fn reject_number(&mut self, b: &mut Batch, line: u64, raw: &[u8], why: Reject) {
        let reason = why.to_string();
        self.reject(b, line, Some(raw), reason);
    }

    #[cold]
    fn reject(&mut self, b: &mut Batch, line: u64, raw: Option<&[u8]>, reason: String) {
        b.rejected += 1;
        if self.reasons_kept < MAX_REASONS {
            self.reasons_kept += 1;
            let value = raw
                .map(|r| String::from_utf8_lossy(&r[..r.len().min(40)]).into_owned())
                .unwrap_or_default();
            b.rejections.push(Rejection {
                line,
                value,
                reason,
            });
        }
    }
}

/// Peek at the first line without consuming it; refuse binary files up front.
/// The file's text, through gzip when it starts with gzip's magic bytes (`.csv.gz` lists).
fn open_text(path: &Path, row_start: Arc<AtomicU64>) -> Result<BufReader<Box<dyn Read + Send>>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut file = BufReader::new(f);
    let gzip = file
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let (inner, max_total): (Box<dyn Read + Send>, u64) = if gzip {
        let most = size.saturating_mul(MAX_GZIP_RATIO).max(64 << 20);
        (Box::new(flate2::bufread::MultiGzDecoder::new(file)), most)
    } else {
        (Box::new(file), u64::MAX)
    };
    let bounded = Bounded {
        inner,
        read: 0,
        row_start,
        max_total,
    };
    Ok(BufReader::with_capacity(1 << 20, Box::new(bounded)))
}

fn first_line(buf: &mut impl BufRead, path: &Path) -> Result<Vec<u8>> {
    let chunk = buf.fill_buf().map_err(|e| Error::io(path, e))?;
    if chunk.is_empty() {
        return Err(Error::MalformedFile {
            path: path.to_path_buf(),
            line: 1,
            reason: "the file is empty".into(),
        });
    }
    if let Some(pos) = memchr::memchr(0, chunk) {
        let line = 1 + memchr::memchr_iter(b'\n', &chunk[..pos]).count() as u64;
        return Err(Error::MalformedFile {
            path: path.to_path_buf(),
            line,
            reason:
                "binary data (a NUL byte): expected a CSV with a header row, or one number per line"
                    .into(),
        });
    }
    let end = memchr::memchr(b'\n', chunk).unwrap_or(chunk.len());
    let mut line = chunk[..end].to_vec();
    if line.starts_with(b"\xEF\xBB\xBF") {
        line.drain(..3);
    }
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(line)
}

fn sniff_delimiter(line: &[u8]) -> Option<u8> {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .map(|d| (d, memchr::memchr_iter(d, line).count()))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(d, _)| d)
}

fn looks_like_number(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    !t.is_empty()
        && t.iter()
            .all(|b| b.is_ascii_digit() || b" +-().".contains(b))
        && t.iter().any(u8::is_ascii_digit)
}

#[cold]
fn csv_error(path: &Path, e: &csv::Error, at: u64) -> Error {
    let line = e.position().map_or(at, |p| p.line());
    match e.kind() {
        // Not the disk failing: the text is not what it should be (a row over the bound, a
        // gzip bomb, a corrupt gzip stream).
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Error::MalformedFile {
                path: path.to_path_buf(),
                line,
                reason: io.to_string(),
            }
        }
        csv::ErrorKind::Io(io) => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        _ => Error::MalformedFile {
            path: path.to_path_buf(),
            line,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &str) -> tempfile_lite::TempPath {
        let p = tempfile_lite::TempPath::new("reader");
        std::fs::File::create(&p.0)
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        p
    }

    mod tempfile_lite {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn new(tag: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let n = N.fetch_add(1, Ordering::Relaxed);
                TempPath(
                    std::env::temp_dir().join(format!("dialer-{tag}-{}-{n}", std::process::id())),
                )
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn vn() -> Normalizer {
        Normalizer::for_iso("VN").unwrap()
    }

    fn read_all(r: &mut ContactReader) -> Batch {
        let mut all = Batch::default();
        while let Some(b) = r.next_batch(3).unwrap() {
            all.numbers.extend(b.numbers);
            all.attrs.extend(b.attrs);
            all.read += b.read;
            all.rejected += b.rejected;
            all.excluded += b.excluded;
            all.rejections.extend(b.rejections);
        }
        all
    }

    #[test]
    fn csv_with_attributes_and_rules() {
        let f = file("name,phone,segment\nAn,0901234567,basic\nBinh,84901234568,VIP\nChi,12,basic\nDung,+84 90 123 4569,gold\n");
        let rules = vec![Rule::parse("segment in {VIP}").unwrap()];
        let mut r = ContactReader::open(&f.0, vn(), Format::Auto, None, &rules, true).unwrap();
        assert_eq!(r.attr_columns(), vec!["name", "segment"]);
        let b = read_all(&mut r);
        assert_eq!(b.numbers, vec![84_901_234_567, 84_901_234_569]);
        assert_eq!(b.attrs, vec!["An\x1fbasic", "Dung\x1fgold"]);
        assert_eq!((b.read, b.rejected, b.excluded), (4, 1, 1));
        assert_eq!(b.rejections[0].line, 4);
        assert_eq!(b.rejections[0].value, "12");
    }

    #[test]
    fn plain_file_is_detected() {
        let f = file("0901234567\n\n+84 90 123 4568\nnot a number\n");
        let mut r = ContactReader::open(&f.0, vn(), Format::Auto, None, &[], true).unwrap();
        let b = read_all(&mut r);
        assert_eq!(b.numbers.len(), 2);
        assert_eq!(b.rejected, 1);
        assert_eq!(b.rejections[0].line, 4);
    }

    #[test]
    fn missing_number_column_names_the_columns() {
        let f = file("name,segment\nAn,VIP\n");
        let e = ContactReader::open(&f.0, vn(), Format::Auto, None, &[], true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("name, segment"), "{e}");
        let e = ContactReader::open(&f.0, vn(), Format::Csv, Some("msisdn"), &[], true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("\"msisdn\""), "{e}");
    }

    #[test]
    fn binary_and_empty_files_are_refused() {
        let f = file("phone\n\0\0\0");
        let e = ContactReader::open(&f.0, vn(), Format::Auto, None, &[], true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 2") && e.contains("binary"), "{e}");
        let f = file("");
        assert!(
            ContactReader::open(&f.0, vn(), Format::Auto, None, &[], true)
                .err()
                .unwrap()
                .to_string()
                .contains("empty")
        );
    }

    proptest::proptest! {
        /// Whatever the bytes, the reader answers a clear error or counts every row it read.
        #[test]
        fn any_file_is_read_or_refused_never_a_panic(
            header in proptest::sample::select(vec!["phone,name\n", "msisdn;segment\n", "", "x\n"]),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let mut content = header.as_bytes().to_vec();
            content.extend(body);
            let p = tempfile_lite::TempPath::new("prop");
            std::fs::write(&p.0, &content).unwrap();
            if let Ok(mut r) = ContactReader::open(&p.0, vn(), Format::Auto, None, &[], true) {
                let mut seen = 0u64;
                loop {
                    match r.next_batch(7) {
                        Ok(Some(b)) => {
                            proptest::prop_assert_eq!(b.read, b.numbers.len() as u64 + b.rejected + b.excluded);
                            proptest::prop_assert_eq!(b.attrs.len(), b.numbers.len());
                            seen += b.read;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            proptest::prop_assert!(matches!(e, Error::MalformedFile { .. }), "{e}");
                            break;
                        }
                    }
                }
                proptest::prop_assert!(seen <= content.len() as u64 + 1);
            }
        }
    }

    #[test]
    fn one_unbounded_field_stops_the_read_instead_of_filling_memory() {
        // An opening quote never closed: before, the whole rest of the file became one field.
        let mut content = b"phone,name\n0901234567,\"".to_vec();
        content.resize(
            content.len() + (MAX_ROW_BYTES + READ_AHEAD) as usize + 4096,
            b'x',
        );
        let p = tempfile_lite::TempPath::new("longrow");
        std::fs::write(&p.0, &content).unwrap();
        let mut r = ContactReader::open(&p.0, vn(), Format::Auto, None, &[], true).unwrap();
        let e = loop {
            match r.next_batch(100) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("read to the end"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(e, Error::MalformedFile { .. }) && e.to_string().contains("a row longer than"),
            "{e}"
        );
    }

    #[test]
    fn long_rows_under_the_bound_are_read_and_huge_attributes_rejected() {
        let mut content = b"phone,note\n0901234567,short\n0901234568,".to_vec();
        content.extend(std::iter::repeat_n(b'y', MAX_ATTR_BYTES + 1));
        content.extend(b"\n0901234569,ok\n");
        // Many rows: the bound is per row, not per file.
        for i in 0..20_000 {
            content.extend(format!("09{:08},{}\n", 10_000_000 + i, "z".repeat(100)).as_bytes());
        }
        let f = tempfile_lite::TempPath::new("attrs");
        std::fs::write(&f.0, &content).unwrap();
        let mut r = ContactReader::open(&f.0, vn(), Format::Auto, None, &[], true).unwrap();
        let b = read_all(&mut r);
        assert_eq!(b.numbers.len(), 2 + 20_000);
        assert_eq!(b.rejected, 1);
        assert!(
            b.rejections[0].reason.contains("at most 4096"),
            "{:?}",
            b.rejections
        );
        assert_eq!(b.rejections[0].line, 3);
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        use flate2::write::GzEncoder;
        let p = tempfile_lite::TempPath::new("bomb");
        let mut enc = GzEncoder::new(
            std::fs::File::create(&p.0).unwrap(),
            flate2::Compression::best(),
        );
        enc.write_all(b"phone\n").unwrap();
        let row = b"0901234567\n".repeat(10_000);
        for _ in 0..700 {
            enc.write_all(&row).unwrap(); // 77 MB of text, a few hundred kB compressed
        }
        enc.finish().unwrap();
        let mut r = ContactReader::open(&p.0, vn(), Format::Auto, None, &[], false).unwrap();
        let e = loop {
            match r.next_batch(100_000) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("read the bomb to the end"),
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains("expands to more than"), "{e}");
    }

    #[test]
    fn gzip_files_are_read_as_text() {
        use flate2::write::GzEncoder;
        let p = tempfile_lite::TempPath::new("gz");
        let mut enc = GzEncoder::new(
            std::fs::File::create(&p.0).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"phone,name\n0901234567,An\n0901234568,Binh\n")
            .unwrap();
        enc.finish().unwrap();
        let mut r = ContactReader::open(&p.0, vn(), Format::Auto, None, &[], true).unwrap();
        let b = read_all(&mut r);
        assert_eq!(b.numbers, vec![84_901_234_567, 84_901_234_568]);
        assert_eq!(b.attrs, vec!["An", "Binh"]);
    }

    #[test]
    fn ragged_rows_are_rejected_with_their_line() {
        let f = file("phone;name\n0901234567;An\n0901234568\n");
        let mut r = ContactReader::open(&f.0, vn(), Format::Auto, None, &[], true).unwrap();
        let b = read_all(&mut r);
        assert_eq!(b.numbers.len(), 1);
        assert_eq!(b.rejections[0].reason, "expected 2 fields, found 1");
        assert_eq!(b.rejections[0].line, 3);
    }
}

//! The core's one error type. Every variant carries the context a user needs to act on it
//! (campaign, partition, file and line, the Redis address); `py/errors.rs` maps each variant to
//! a Python exception class.

use std::path::PathBuf;

use crate::contacts::import::ImportReport;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis could not be reached, or the connection broke.
    #[error("Redis at {url} is unavailable during {op}: {detail}")]
    RedisUnavailable {
        url: String,
        op: &'static str,
        detail: String,
    },

    /// Redis refused a write because it reached `maxmemory`.
    #[error("Redis at {url} is full (maxmemory reached) during {op}: {detail}")]
    RedisFull {
        url: String,
        op: &'static str,
        detail: String,
    },

    /// Any other error answered by Redis (a script error, a wrong type at a key ...).
    #[error("Redis at {url} answered an error during {op} on {target}: {detail}")]
    Redis {
        url: String,
        op: &'static str,
        target: String,
        detail: String,
    },

    /// Redis answered something this code does not expect (a key of another program?).
    #[error("unexpected Redis reply during {op} on {target}: {detail}")]
    Protocol {
        op: &'static str,
        target: String,
        detail: String,
    },

    #[error("unknown country {iso:?}: give an ISO 3166-1 alpha-2 code such as VN, US or GB")]
    UnknownCountry { iso: String },

    #[error("{path}: no column {column:?} in the header (columns: {found})")]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: String,
    },

    #[error("{path}, line {line}: {reason}")]
    MalformedFile {
        path: PathBuf,
        line: u64,
        reason: String,
    },

    /// A contacts or suppression file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A media engine socket failed: `op` is what the engine was doing (bind an RTP port, set
    /// one up, create its event socket pair, start its thread), `at` where (the address, and
    /// the port range when one is configured).
    #[error("media engine cannot {op} ({at}): {source}")]
    Media {
        op: &'static str,
        at: String,
        source: std::io::Error,
    },

    #[error("bad exclusion rule {rule:?}: {reason}")]
    BadRule { rule: String, reason: String },

    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },

    /// The caller asked to stop (Ctrl-C): `op` stopped between two batches.
    #[error("{op} cancelled")]
    Cancelled { op: &'static str },

    /// A pacing event names a call the engine does not hold (never dialled, or already ended).
    #[error("{event}: call {call:?} is not in flight (never dialled, or already ended)")]
    UnknownCall { event: &'static str, call: String },

    /// A pacing event arrived in a state where it cannot happen (answered before dialled, ...).
    #[error("{event}: call {call:?} is {state}; {expected}")]
    UnexpectedEvent {
        event: &'static str,
        call: String,
        state: &'static str,
        expected: &'static str,
    },

    /// A pacing event is stamped earlier than one the engine already took: one monotonic clock.
    #[error(
        "{event}: now={now} is earlier than the last event the engine took (now={last}); \
             times must come from one monotonic clock"
    )]
    TimeWentBackwards {
        event: &'static str,
        now: f64,
        last: f64,
    },

    #[error("campaign {campaign:?} is stored with {stored} partition(s), not {asked}")]
    PartitionMismatch {
        campaign: String,
        stored: u32,
        asked: u32,
    },

    /// A campaign names suppression lists that do not exist (deleted, or never loaded): its
    /// claims fail closed, the contacts go back untouched, nobody is dialled.
    #[error(
        "campaign {campaign:?} names suppression list(s) that do not exist: {}; nothing is dialled \
         until they are loaded again or taken off the campaign",
        lists.join(", ")
    )]
    ListMissing {
        campaign: String,
        lists: Vec<String>,
    },

    /// A partition's token sequence is behind a token this queue handed out: Redis lost writes
    /// it had acknowledged (restarted from an AOF or a snapshot missing its last writes, or a
    /// replica promoted before it had them). Nothing was claimed: the calls still in progress
    /// must be re-asserted first ([`CallQueue::reassert`](crate::queue::CallQueue::reassert)),
    /// or their contacts could be handed out again.
    #[error(
        "campaign {campaign:?} partition {partition}: Redis lost writes (its token sequence is at \
         {seq}, this queue has handed out up to {floor}); nothing claimed until the calls in \
         progress are re-asserted"
    )]
    Rewound {
        campaign: String,
        partition: u32,
        seq: u64,
        floor: u64,
    },

    /// An import stopped part-way: `report` says what was loaded before `source` happened.
    /// Loading is idempotent, so running the same import again completes it.
    #[error(
        "import into campaign {campaign:?} stopped after {} contact(s) were loaded \
         ({} line(s) read); running it again skips those as duplicates: {source}",
        report.accepted, report.read
    )]
    ImportInterrupted {
        campaign: String,
        report: Box<ImportReport>,
        source: Box<Error>,
    },
}

impl Error {
    #[cold]
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            what,
            reason: reason.into(),
        }
    }

    #[cold]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    #[cold]
    pub(crate) fn media(op: &'static str, at: impl Into<String>, source: std::io::Error) -> Self {
        Error::Media {
            op,
            at: at.into(),
            source,
        }
    }

    /// Classify a Redis client error: unreachable, full, or an answered error.
    #[cold]
    pub(crate) fn redis(url: &str, op: &'static str, target: &str, e: &redis::RedisError) -> Self {
        let detail = if e.is_timeout() {
            format!("no reply within the command timeout ({e})")
        } else {
            e.to_string()
        };
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error() && e.code().is_none()
        {
            Error::RedisUnavailable {
                url: url.to_string(),
                op,
                detail,
            }
        } else if e.code() == Some("OOM") || detail.contains("OOM") && detail.contains("maxmemory")
        {
            Error::RedisFull {
                url: url.to_string(),
                op,
                detail,
            }
        } else {
            Error::Redis {
                url: url.to_string(),
                op,
                target: target.to_string(),
                detail,
            }
        }
    }

    #[cold]
    pub(crate) fn protocol(op: &'static str, target: &str, detail: impl Into<String>) -> Self {
        Error::Protocol {
            op,
            target: target.to_string(),
            detail: detail.into(),
        }
    }
}

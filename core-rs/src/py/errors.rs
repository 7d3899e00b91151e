//! Python exceptions. Each subclasses the builtin it means, so `except ValueError` or
//! `except ConnectionError` catch what they should:
//!
//! ```text
//! DialerError(Exception)
//! ├── InvalidInput(DialerError, ValueError)
//! │   ├── UnknownCountry, MissingColumn, MalformedFile, BadRule, InvalidNumber, ListMissing
//! │   └── PacingEventError: UnknownCall, OutOfOrderEvent
//! ├── ContactsFileError(DialerError, OSError)      the file cannot be read
//! ├── MediaError(DialerError, OSError)             a media engine socket failed (RTP port bind)
//! ├── RedisError(DialerError, OSError)             Redis answered an error
//! │   ├── RedisUnavailable(RedisError, ConnectionError)
//! │   ├── RedisFull(RedisError)                   maxmemory reached
//! │   └── RedisRewound(RedisError)                Redis lost acknowledged writes
//! └── ImportInterrupted(DialerError)               .report: what was loaded before the failure
//! ```
//! `create_exception!` takes one base, so the classes are defined by a few lines of Python when
//! the module loads and looked up by name when an error is raised (a cold path).

use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::error::Error;

const CLASSES: &std::ffi::CStr = cr#"
class DialerError(Exception):
    """Base class of every error raised by dialer_core."""

class InvalidInput(DialerError, ValueError):
    """An argument, a file's content or a rule is not valid."""

class UnknownCountry(InvalidInput):
    """The default country is not an ISO 3166-1 alpha-2 code the core knows."""

class MissingColumn(InvalidInput):
    """The file has no column for the number, or for a column an exclusion rule names."""

class MalformedFile(InvalidInput):
    """The file is not a CSV nor a list of numbers (binary, empty, broken quoting)."""

class BadRule(InvalidInput):
    """An exclusion rule does not parse."""

class InvalidNumber(InvalidInput):
    """A phone number is not valid for E.164."""
class ListMissing(InvalidInput):
    """A campaign names a suppression list that does not exist: its claims fail closed."""

class PacingEventError(InvalidInput):
    """The pacing engine refused an event: it leaves the engine's state as it was."""

class UnknownCall(PacingEventError):
    """A pacing event names a call that is not in flight (never dialled, or already ended)."""

class OutOfOrderEvent(PacingEventError):
    """A pacing event cannot happen in the call's state, or its time is earlier than the last."""

class ContactsFileError(DialerError, OSError):
    """A contacts or suppression file cannot be read."""

class MediaError(DialerError, OSError):
    """The media engine cannot use a socket: no RTP port can be bound (none free in the range,
    or the address is not this host's), or the engine cannot start."""

class RedisError(DialerError, OSError):
    """Redis answered an error, or something unexpected."""

class RedisUnavailable(RedisError, ConnectionError):
    """Redis cannot be reached or the connection broke."""

class RedisFull(RedisError):
    """Redis refused a write: maxmemory is reached."""

class RedisRewound(RedisError):
    """Redis lost writes it had acknowledged (a restart from an AOF missing its last second):
    a claim refused until the calls in progress are re-asserted (`CallQueue.reassert`)."""

class ImportInterrupted(DialerError):
    """An import stopped part-way; `.report` says what was loaded (running it again completes it)."""
    report: dict
"#;

pub const NAMES: &[&str] = &[
    "DialerError",
    "InvalidInput",
    "UnknownCountry",
    "MissingColumn",
    "MalformedFile",
    "BadRule",
    "InvalidNumber",
    "ListMissing",
    "PacingEventError",
    "UnknownCall",
    "OutOfOrderEvent",
    "ContactsFileError",
    "MediaError",
    "RedisError",
    "RedisUnavailable",
    "RedisFull",
    "RedisRewound",
    "ImportInterrupted",
];

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let defs = PyModule::from_code(
        py,
        CLASSES,
        c"dialer_core/errors.py",
        c"dialer_core._errors",
    )?;
    for name in NAMES {
        let cls = defs.getattr(*name)?;
        cls.setattr("__module__", "dialer_core")?;
        m.add(*name, cls)?;
    }
    Ok(())
}

/// Build an instance of `dialer_core.<class>` with `msg`.
#[cold]
pub(crate) fn raise(class: &str, msg: String) -> PyErr {
    Python::attach(
        |py| match py.import("dialer_core").and_then(|m| m.getattr(class)) {
            Ok(cls) => match cls.call1((msg.clone(),)) {
                Ok(inst) => PyErr::from_value(inst),
                Err(e) => e,
            },
            Err(e) => e,
        },
    )
}

fn class_of(e: &Error) -> &'static str {
    match e {
        Error::RedisUnavailable { .. } => "RedisUnavailable",
        Error::RedisFull { .. } => "RedisFull",
        Error::Redis { .. } | Error::Protocol { .. } => "RedisError",
        Error::UnknownCountry { .. } => "UnknownCountry",
        Error::MissingColumn { .. } => "MissingColumn",
        Error::MalformedFile { .. } => "MalformedFile",
        Error::Io { .. } => "ContactsFileError",
        Error::Media { .. } => "MediaError",
        Error::BadRule { .. } => "BadRule",
        Error::InvalidArgument { .. } | Error::PartitionMismatch { .. } => "InvalidInput",
        Error::ListMissing { .. } => "ListMissing",
        Error::Rewound { .. } => "RedisRewound",
        Error::ImportInterrupted { .. } => "ImportInterrupted",
        Error::UnknownCall { .. } => "UnknownCall",
        Error::UnexpectedEvent { .. } | Error::TimeWentBackwards { .. } => "OutOfOrderEvent",
        Error::Cancelled { .. } => "KeyboardInterrupt",
    }
}

impl From<Error> for PyErr {
    #[cold]
    fn from(e: Error) -> PyErr {
        if let Error::Cancelled { .. } = e {
            // Ctrl-C reached a long call: it surfaces as the KeyboardInterrupt it was.
            return pyo3::exceptions::PyKeyboardInterrupt::new_err(e.to_string());
        }
        let err = raise(class_of(&e), e.to_string());
        if let Error::ImportInterrupted { report, source, .. } = e {
            Python::attach(|py| {
                let value = err.value(py);
                if let Ok(d) = super::contacts::report_dict(py, &report) {
                    let _ = value.setattr("report", d);
                }
                let cause = PyErr::from(*source);
                value.setattr("__cause__", cause.value(py)).ok();
            });
        }
        err
    }
}

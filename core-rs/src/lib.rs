//! `dialer_core`: the Rust core of the predictive dialer.
//!
//! - [`contacts`]: E.164 normalisation, streaming import of contact files, exclusion rules,
//!   suppression lists, sample lists.
//! - [`queue`]: the call queue in Redis (Lua scripts): claim under a lease, complete with an
//!   outcome, retries, callbacks, do-not-call-back.
//! - [`pacing`]: the pacing engine (pure: no I/O, no clock): how many calls to place now.
//! - [`sim`]: a seeded call-centre simulator and the baseline pacing policies.
//! - [`media`]: the RTP media engine (prompts, RFC 4733 DTMF), G.711, WAV prompts.
//! - [`keys`]: Redis key names (one hash tag per campaign partition).
//! - [`store`]: the Redis connection every part uses.
//! - [`error`]: the one error type.
//! - `py` (feature `python`): the PyO3 bindings, the only code that knows Python.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod contacts;
pub mod error;
pub mod keys;
pub mod media;
pub mod pacing;
pub mod queue;
pub mod sim;
pub mod store;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};

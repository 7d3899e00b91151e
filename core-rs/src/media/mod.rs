//! Media: the RTP engine that plays IVR prompts and hears DTMF for every call on one thread.
//!
//! - [`engine`]: the engine thread and its handle ([`MediaEngine`]).
//! - [`rtp`]: RTP packets (RFC 3550) and telephone-events (RFC 4733).
//! - [`g711`]: u-law and A-law.
//! - [`wav`]: WAV files to 8 kHz mono samples (prompts).

pub mod engine;
pub mod g711;
pub mod rtp;
pub mod wav;

pub use engine::{Config, Event, MediaEngine, Stats};
pub use g711::Codec;

#[cfg(test)]
mod tests;

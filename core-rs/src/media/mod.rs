//! Media: the RTP engine that plays IVR prompts and hears DTMF for every call on one thread.
//!
//! - [`engine`]: the handle ([`MediaEngine`]): checks each request and hands it to the thread.
//! - `config`: its settings ([`Config`]).
//! - `channel`: commands to the thread; [`Event`]s and totals back.
//! - `worker`: the engine thread: the 2 ms tick loop, every socket read and write, the clock.
//! - `call`: one call's media state, sans-I/O (no socket, no clock): the next frame, what a
//!   received packet means, inactivity.
//! - `stats`: the totals and the frame lateness histogram ([`Stats`]).
//! - `prompt`: prompts encoded once for both codecs.
//! - [`rtp`]: RTP packets (RFC 3550) and telephone-events (RFC 4733).
//! - [`g711`]: u-law and A-law.
//! - [`wav`]: WAV files to 8 kHz mono samples (prompts).

mod call;
mod channel;
mod config;
pub mod engine;
pub mod g711;
mod prompt;
pub mod rtp;
mod stats;
pub mod wav;
mod worker;

pub use channel::Event;
pub use config::Config;
pub use engine::MediaEngine;
pub use g711::Codec;
pub use prompt::Prompt;
pub use stats::Stats;

#[cfg(test)]
mod tests;

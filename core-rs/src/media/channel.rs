//! Between the handle and the engine thread: commands go to the thread over a channel; events
//! come back through a queue and a notification socket an event loop can watch, and the totals
//! through [`Shared::stats`].

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

use super::g711::Codec;
use super::prompt::Prompt;
use super::stats::Stats;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A prompt played to its end (a prompt cut by `play` or `stop` is not reported).
    Played { call: u64, prompt: String },
    /// An RFC 4733 DTMF key, reported once per event (at its first packet).
    Digit { call: u64, key: char },
    /// No RTP from the far end for the configured inactivity time (reported once).
    Inactive { call: u64 },
}

pub(super) enum Cmd {
    Bridge {
        a: u64,
        b: u64,
    },
    Unbridge {
        id: u64,
    },
    Add {
        id: u64,
        sock: UdpSocket,
    },
    Connect {
        id: u64,
        remote: SocketAddr,
        codec: Codec,
        dtmf: Option<u8>,
    },
    Play {
        id: u64,
        prompts: Vec<(String, Arc<Prompt>)>,
    },
    Stop {
        id: u64,
    },
    Digits {
        id: u64,
        keys: Vec<u8>,
        ms: u32,
    },
    Close {
        id: u64,
    },
    Shutdown,
}

/// What the thread hands back: events (and a byte on `notify` when the queue was empty), totals.
pub(super) struct Shared {
    pub(super) events: Mutex<VecDeque<Event>>,
    pub(super) notify: UnixStream,
    pub(super) stats: Mutex<Stats>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

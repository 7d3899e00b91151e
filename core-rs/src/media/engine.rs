//! The media engine's handle ([`MediaEngine`]): it checks each request, then hands it to the
//! engine thread as a command and returns at once (`channel`); the thread is in `worker`.
//!
//! Each call has its own UDP socket, bound here when the call is opened so that its port can go
//! into the SDP offer. Events come back through a queue and a notification socket that an event
//! loop can watch; how late each frame left against its schedule is kept in [`Stats`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::channel::{lock, Cmd, Event, Shared};
use super::config::Config;
use super::g711::Codec;
use super::prompt::Prompt;
use super::rtp;
use super::stats::Stats;
use super::worker::Worker;
use crate::{Error, Result};

/// The handle: commands go to the engine thread; dropping it stops the thread.
pub struct MediaEngine {
    cfg: Config,
    tx: Sender<Cmd>,
    shared: Arc<Shared>,
    reader: UnixStream,
    prompts: Mutex<HashMap<String, Arc<Prompt>>>,
    open: Mutex<HashSet<u64>>,
    next_id: AtomicU64,
    next_port: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MediaEngine {
    pub fn start(cfg: Config) -> Result<MediaEngine> {
        let ms = cfg.ptime.as_millis();
        if !(10..=60).contains(&ms) || !ms.is_multiple_of(10) {
            return Err(Error::invalid(
                "ptime",
                format!("{ms} ms: expected 10, 20, ... 60"),
            ));
        }
        if let Some((lo, hi)) = cfg.ports {
            if lo == 0 || hi < lo.saturating_add(1) {
                return Err(Error::invalid(
                    "ports",
                    format!("{lo}-{hi}: expected a range of at least 2 ports"),
                ));
            }
        }
        let at = || format!("engine on {}", cfg.bind);
        let pair_failed = |e| Error::media("create its event socket pair", at(), e);
        let (reader, notify) = UnixStream::pair().map_err(pair_failed)?;
        for s in [&reader, &notify] {
            s.set_nonblocking(true).map_err(pair_failed)?;
        }
        let shared = Arc::new(Shared {
            events: Mutex::new(VecDeque::new()),
            notify,
            stats: Mutex::new(Stats::new()),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = Worker::new(cfg.clone(), rx, shared.clone());
        let thread = std::thread::Builder::new()
            .name("dialer-media".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::media("start its thread", at(), e))?;
        let first = cfg.ports.map_or(0, |(lo, _)| lo as u64);
        Ok(MediaEngine {
            cfg,
            tx,
            shared,
            reader,
            prompts: Mutex::new(HashMap::new()),
            open: Mutex::new(HashSet::new()),
            next_id: AtomicU64::new(1),
            next_port: AtomicU64::new(first),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Register (or replace) a prompt: 8 kHz mono samples.
    pub fn add_prompt(&self, name: &str, pcm8k: &[i16]) -> Duration {
        let p = Arc::new(Prompt::new(pcm8k));
        let d = p.duration();
        lock(&self.prompts).insert(name.to_string(), p);
        d
    }

    pub fn has_prompt(&self, name: &str) -> bool {
        lock(&self.prompts).contains_key(name)
    }

    /// A new call's media: its id and the local RTP port.
    pub fn open(&self) -> Result<(u64, u16)> {
        let sock = self.bind()?;
        let failed = |e| Error::media("set up an RTP port", self.cfg.bind.to_string(), e);
        sock.set_nonblocking(true).map_err(failed)?;
        let port = sock.local_addr().map_err(failed)?.port();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id);
        self.send(Cmd::Add { id, sock })?;
        Ok((id, port))
    }

    /// An RTP socket: any free port, or the next free even port of the range.
    fn bind(&self) -> Result<UdpSocket> {
        let ip = self.cfg.bind;
        let Some((lo, hi)) = self.cfg.ports else {
            return UdpSocket::bind(SocketAddr::new(ip, 0))
                .map_err(|e| Error::media("bind an RTP port", format!("{ip}, any port"), e));
        };
        let (lo, hi) = ((lo as u64 + 1) & !1, hi as u64);
        let span = (hi - lo) / 2 + 1;
        for _ in 0..span {
            let n = self.next_port.fetch_add(2, Ordering::Relaxed);
            let port = lo + ((n.saturating_sub(lo)) / 2 % span) * 2;
            let addr = SocketAddr::new(ip, port as u16);
            match UdpSocket::bind(addr) {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) => {
                    let at = format!("{addr} of ports {lo}-{hi}");
                    return Err(Error::media("bind an RTP port", at, e));
                }
            }
        }
        Err(no_free_port(ip, lo, hi))
    }

    fn known(&self, id: u64) -> Result<()> {
        if lock(&self.open).contains(&id) {
            Ok(())
        } else {
            Err(Error::invalid("call", format!("no open media call {id}")))
        }
    }

    /// Where the call's RTP goes, in which codec, and the far end's telephone-event payload type.
    pub fn connect(
        &self,
        id: u64,
        remote: SocketAddr,
        codec: Codec,
        dtmf: Option<u8>,
    ) -> Result<()> {
        self.known(id)?;
        self.send(Cmd::Connect {
            id,
            remote,
            codec,
            dtmf,
        })
    }

    /// Play these prompts in order, replacing whatever plays now.
    pub fn play(&self, id: u64, names: &[String]) -> Result<()> {
        self.known(id)?;
        let table = lock(&self.prompts);
        let mut prompts = Vec::with_capacity(names.len());
        for n in names {
            let p = table
                .get(n)
                .ok_or_else(|| Error::invalid("prompt", format!("no prompt named {n:?}")))?;
            prompts.push((n.clone(), p.clone()));
        }
        drop(table);
        self.send(Cmd::Play { id, prompts })
    }

    /// Bridge two calls: the audio each receives is sent out of the other (the customer hears
    /// the agent and the agent the customer); their own prompts and silence stop. A call bridged
    /// elsewhere before leaves that bridge.
    pub fn bridge(&self, a: u64, b: u64) -> Result<()> {
        self.known(a)?;
        self.known(b)?;
        if a == b {
            return Err(Error::invalid(
                "bridge",
                "a call cannot be bridged to itself",
            ));
        }
        self.send(Cmd::Bridge { a, b })
    }

    /// Take the call (and its peer) out of their bridge: each goes back to its own silence.
    pub fn unbridge(&self, id: u64) -> Result<()> {
        self.known(id)?;
        self.send(Cmd::Unbridge { id })
    }

    /// Stop playing (silence follows).
    pub fn stop(&self, id: u64) -> Result<()> {
        self.known(id)?;
        self.send(Cmd::Stop { id })
    }

    /// Send DTMF keys as RFC 4733 events, each lasting `ms`, 60 ms apart.
    pub fn send_digits(&self, id: u64, keys: &str, ms: u32) -> Result<()> {
        self.known(id)?;
        let events = keys
            .chars()
            .map(|k| {
                rtp::dtmf_event(k)
                    .ok_or_else(|| Error::invalid("digits", format!("{k:?} is not a DTMF key")))
            })
            .collect::<Result<Vec<u8>>>()?;
        if !(40..=2000).contains(&ms) {
            return Err(Error::invalid(
                "duration",
                format!("{ms} ms: expected 40-2000"),
            ));
        }
        self.send(Cmd::Digits {
            id,
            keys: events,
            ms,
        })
    }

    /// End the call's media and free its port. Closing an unknown or closed call does nothing.
    pub fn close(&self, id: u64) -> Result<()> {
        if lock(&self.open).remove(&id) {
            self.send(Cmd::Close { id })?;
        }
        Ok(())
    }

    /// Events since the last call (and clears the notification socket).
    pub fn events(&self) -> Vec<Event> {
        let mut sink = [0u8; 256];
        while let Ok(n) = (&self.reader).read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        lock(&self.shared.events).drain(..).collect()
    }

    /// A socket that becomes readable when events are waiting.
    pub fn notify_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.reader.as_raw_fd()
    }

    pub fn stats(&self) -> Stats {
        let mut s = lock(&self.shared.stats).clone();
        s.calls = lock(&self.open).len();
        s
    }

    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = Stats::new();
    }

    fn send(&self, cmd: Cmd) -> Result<()> {
        self.tx
            .send(cmd)
            .map_err(|_| Error::invalid("media engine", "stopped"))
    }

    /// Stop the thread (every call's media ends). Also done on drop.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        lock(&self.open).clear();
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Every even port of the range is taken (by other calls, or other programs).
#[cold]
fn no_free_port(ip: IpAddr, lo: u64, hi: u64) -> Error {
    let e = std::io::Error::new(
        ErrorKind::AddrInUse,
        "no free RTP port: each even port of the range is in use",
    );
    Error::media("bind an RTP port", format!("{ip}, ports {lo}-{hi}"), e)
}

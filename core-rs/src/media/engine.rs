//! The RTP media engine: one thread carries the audio of every call.
//!
//! Each call has its own UDP socket (bound when the call is opened, so its port can go into the
//! SDP offer). Calls are spread over the slots of a frame (2 ms each: ten for 20 ms frames), so
//! that a frame's sends are not one burst. Every 2 ms the thread wakes at a fixed schedule and,
//! for the calls of that slot, drains what each socket received (RFC 4733 telephone-events become
//! [`Event::Digit`]), then sends each connected call one frame: the next 20 ms of its prompt, an
//! RFC 4733 digit being sent, or silence. Commands arrive over a channel and are applied while the thread waits for the next
//! tick; events go back through a queue and a notification socket that an event loop can watch.
//! How late each frame left against its schedule is kept in a histogram ([`Stats`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::g711::Codec;
use super::rtp;
use crate::{Error, Result};

/// Samples per millisecond at 8 kHz.
const PER_MS: u32 = 8;
/// One slot of a frame's schedule.
const SLOT: Duration = Duration::from_millis(2);
/// Width of one lateness bucket (µs) and their number (the last one holds everything later).
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 2001;

#[derive(Debug, Clone)]
pub struct Config {
    /// The address RTP sockets bind (and the SDP advertises).
    pub bind: IpAddr,
    /// Frame length (10-60 ms; G.711's usual 20 ms).
    pub ptime: Duration,
    /// Report a connected call that has received no RTP for this long ([`Event::Inactive`]).
    pub inactivity: Option<Duration>,
    /// Send silence frames when no prompt plays (keeps NAT bindings and the far end's own
    /// inactivity timer alive); off: send only prompts and digits.
    pub send_silence: bool,
    /// Bind RTP sockets to even ports in this range (inclusive); `None`: any free port.
    pub ports: Option<(u16, u16)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            ptime: Duration::from_millis(20),
            inactivity: None,
            send_silence: true,
            ports: None,
        }
    }
}

/// A prompt encoded once for both codecs.
#[derive(Debug)]
pub struct Prompt {
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl Prompt {
    pub fn new(pcm8k: &[i16]) -> Prompt {
        Prompt {
            pcmu: Codec::Pcmu.encode(pcm8k),
            pcma: Codec::Pcma.encode(pcm8k),
        }
    }

    fn bytes(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pcmu.len() as u64 * 1000 / PER_MS as u64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A prompt played to its end (a prompt cut by `play` or `stop` is not reported).
    Played { call: u64, prompt: String },
    /// An RFC 4733 DTMF key, reported once per event (at its first packet).
    Digit { call: u64, key: char },
    /// No RTP from the far end for the configured inactivity time (reported once).
    Inactive { call: u64 },
}

/// Totals since the engine started (or since [`MediaEngine::reset_stats`]).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub calls: usize,
    pub ticks: u64,
    /// Ticks that began more than one frame late (the thread could not keep up).
    pub overruns: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Frames relayed from one bridged call to its peer.
    pub frames_relayed: u64,
    /// Datagrams on an RTP port that were not RTP.
    pub malformed: u64,
    pub digits: u64,
    pub send_errors: u64,
    /// How late frames left against their schedule, in 100 µs buckets.
    lateness: Vec<u64>,
}

impl Stats {
    /// The lateness (ms) under which `q` (0-1) of the frames left.
    pub fn lateness_ms(&self, q: f64) -> f64 {
        let total: u64 = self.lateness.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.lateness.iter().enumerate() {
            seen += n;
            if seen >= want {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        (BUCKETS as u64 * BUCKET_US) as f64 / 1000.0
    }

    /// Frames that left more than `ms` late.
    pub fn later_than(&self, ms: f64) -> u64 {
        let from = ((ms * 1000.0) / BUCKET_US as f64).ceil() as usize;
        self.lateness.iter().skip(from).sum()
    }
}

enum Cmd {
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

struct Shared {
    events: Mutex<VecDeque<Event>>,
    notify: UnixStream,
    stats: Mutex<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
        let (reader, notify) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
        for s in [&reader, &notify] {
            s.set_nonblocking(true)
                .map_err(|e| Error::io("socketpair", e))?;
        }
        let shared = Arc::new(Shared {
            events: Mutex::new(VecDeque::new()),
            notify,
            stats: Mutex::new(Stats {
                lateness: vec![0; BUCKETS],
                ..Stats::default()
            }),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = Worker::new(cfg.clone(), rx, shared.clone());
        let thread = std::thread::Builder::new()
            .name("dialer-media".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::io("media thread", e))?;
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
        sock.set_nonblocking(true)
            .map_err(|e| Error::io("rtp socket", e))?;
        let port = sock
            .local_addr()
            .map_err(|e| Error::io("rtp socket", e))?
            .port();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id);
        self.send(Cmd::Add { id, sock })?;
        Ok((id, port))
    }

    fn bind(&self) -> Result<UdpSocket> {
        let Some((lo, hi)) = self.cfg.ports else {
            return UdpSocket::bind(SocketAddr::new(self.cfg.bind, 0))
                .map_err(|e| Error::io("rtp socket", e));
        };
        let (lo, hi) = ((lo as u64 + 1) & !1, hi as u64);
        let span = (hi - lo) / 2 + 1;
        for _ in 0..span {
            let n = self.next_port.fetch_add(2, Ordering::Relaxed);
            let port = lo + ((n.saturating_sub(lo)) / 2 % span) * 2;
            match UdpSocket::bind(SocketAddr::new(self.cfg.bind, port as u16)) {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) => return Err(Error::io("rtp socket", e)),
            }
        }
        Err(Error::invalid(
            "ports",
            format!("no free RTP port in {lo}-{hi}"),
        ))
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
        let mut s = lock(&self.shared.stats);
        *s = Stats {
            lateness: vec![0; BUCKETS],
            ..Stats::default()
        };
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

struct DigitTx {
    event: u8,
    start_ts: u32,
    /// Frames sent so far for this event, and how many it lasts.
    sent: u32,
    frames: u32,
    /// End packets still to send (RFC 4733 2.5.1.4: the end is sent three times).
    ends: u8,
}

struct Call {
    sock: UdpSocket,
    remote: Option<SocketAddr>,
    codec: Codec,
    dtmf: Option<u8>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    queue: VecDeque<(String, Arc<Prompt>)>,
    offset: usize,
    marker: bool,
    keys: VecDeque<u8>,
    digit_ms: u32,
    digit: Option<DigitTx>,
    /// Frames of silence still due between two digits.
    gap: u32,
    last_rx: Instant,
    told_inactive: bool,
    last_event_ts: Option<u32>,
    /// The call this one's audio is relayed to (and from), while bridged.
    peer: Option<u64>,
}

struct Worker {
    cfg: Config,
    rx: Receiver<Cmd>,
    shared: Arc<Shared>,
    /// Calls by slot: call `id` is in `slots[id % slots.len()]`.
    slots: Vec<HashMap<u64, Call>>,
    seed: u64,
    events: Vec<Event>,
    late: Vec<u32>,
    frame: usize,
    /// Audio received on bridged calls this slot: (peer, codec, marker, payload).
    relay: Vec<(u64, Codec, bool, Vec<u8>)>,
}

impl Worker {
    fn new(cfg: Config, rx: Receiver<Cmd>, shared: Arc<Shared>) -> Worker {
        let frame = (cfg.ptime.as_millis() as u32 * PER_MS) as usize;
        let n_slots = (cfg.ptime.as_millis() / SLOT.as_millis()).max(1) as usize;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Worker {
            cfg,
            rx,
            shared,
            slots: (0..n_slots).map(|_| HashMap::new()).collect(),
            seed,
            events: Vec::new(),
            late: Vec::new(),
            frame,
            relay: Vec::new(),
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: SSRCs, first sequence numbers and timestamps (RFC 3550 5.1: random).
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn call_mut(&mut self, id: u64) -> Option<&mut Call> {
        let n = self.slots.len() as u64;
        self.slots[(id % n) as usize].get_mut(&id)
    }

    fn run(mut self) {
        let ptime = self.cfg.ptime;
        let step = ptime / self.slots.len() as u32;
        let mut tick = Instant::now() + step;
        let mut slot = 0usize;
        loop {
            loop {
                match self.rx.recv_deadline(tick) {
                    Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(cmd) => self.apply(cmd),
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            let now = Instant::now();
            let overran = now > tick + ptime;
            self.receive(slot, now);
            self.send_frames(slot, tick);
            self.publish(overran, slot == 0);
            tick += step;
            slot = (slot + 1) % self.slots.len();
            let now = Instant::now();
            if now > tick + 5 * ptime {
                tick = now; // far behind: skip the lost ticks rather than burst them out
            }
        }
    }

    fn apply(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Add { id, sock } => {
                let r = self.random();
                let n = self.slots.len() as u64;
                self.slots[(id % n) as usize].insert(
                    id,
                    Call {
                        sock,
                        remote: None,
                        codec: Codec::Pcmu,
                        dtmf: None,
                        ssrc: r as u32,
                        seq: (r >> 32) as u16,
                        ts: (r >> 16) as u32,
                        queue: VecDeque::new(),
                        offset: 0,
                        marker: true,
                        keys: VecDeque::new(),
                        digit_ms: 100,
                        digit: None,
                        gap: 0,
                        last_rx: Instant::now(),
                        told_inactive: false,
                        last_event_ts: None,
                        peer: None,
                    },
                );
            }
            Cmd::Connect {
                id,
                remote,
                codec,
                dtmf,
            } => {
                if let Some(c) = self.call_mut(id) {
                    c.remote = Some(remote);
                    c.codec = codec;
                    c.dtmf = dtmf;
                    c.last_rx = Instant::now();
                    c.told_inactive = false;
                }
            }
            Cmd::Play { id, prompts } => {
                if let Some(c) = self.call_mut(id) {
                    c.queue = prompts.into();
                    c.offset = 0;
                    c.marker = true;
                    self.skip_empty(id);
                }
            }
            Cmd::Stop { id } => {
                if let Some(c) = self.call_mut(id) {
                    c.queue.clear();
                    c.offset = 0;
                }
            }
            Cmd::Digits { id, keys, ms } => {
                if let Some(c) = self.call_mut(id) {
                    c.keys.extend(keys);
                    c.digit_ms = ms;
                }
            }
            Cmd::Bridge { a, b } => {
                let (pa, pb) = (
                    self.call_mut(a).and_then(|c| c.peer),
                    self.call_mut(b).and_then(|c| c.peer),
                );
                for old in [pa, pb].into_iter().flatten() {
                    if let Some(c) = self.call_mut(old) {
                        c.peer = None;
                    }
                }
                if self.call_mut(a).is_some() && self.call_mut(b).is_some() {
                    for (x, y) in [(a, b), (b, a)] {
                        if let Some(c) = self.call_mut(x) {
                            c.peer = Some(y);
                            c.queue.clear();
                            c.offset = 0;
                            c.marker = true;
                        }
                    }
                }
            }
            Cmd::Unbridge { id } => self.unbridge(id),
            Cmd::Close { id } => {
                self.unbridge(id);
                let n = self.slots.len() as u64;
                self.slots[(id % n) as usize].remove(&id);
            }
            Cmd::Shutdown => {}
        }
    }

    fn unbridge(&mut self, id: u64) {
        if let Some(peer) = self.call_mut(id).and_then(|c| c.peer.take()) {
            if let Some(p) = self.call_mut(peer) {
                p.peer = None;
                p.marker = true;
            }
        }
    }

    /// Report (and drop) prompts with no samples at the head of a call's queue.
    fn skip_empty(&mut self, id: u64) {
        let n = self.slots.len() as u64;
        if let Some(c) = self.slots[(id % n) as usize].get_mut(&id) {
            while let Some((name, p)) = c.queue.front() {
                if !p.pcmu.is_empty() {
                    break;
                }
                self.events.push(Event::Played {
                    call: id,
                    prompt: name.clone(),
                });
                c.queue.pop_front();
            }
        }
    }

    fn receive(&mut self, slot: usize, now: Instant) {
        let mut buf = [0u8; 2048];
        let (mut received, mut malformed, mut digits) = (0u64, 0u64, 0u64);
        for (&id, c) in self.slots[slot].iter_mut() {
            loop {
                let n = match c.sock.recv_from(&mut buf) {
                    Ok((n, _)) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break, // WouldBlock, or an ICMP error from an earlier send
                };
                let Some(p) = rtp::parse(&buf[..n]) else {
                    malformed += 1;
                    continue;
                };
                received += 1;
                c.last_rx = now;
                c.told_inactive = false;
                if Some(p.payload_type) != c.dtmf {
                    if let (Some(peer), Some(codec)) =
                        (c.peer, Codec::from_payload_type(p.payload_type))
                    {
                        self.relay.push((peer, codec, p.marker, p.payload.to_vec()));
                    }
                    continue;
                }
                let Some(e) = rtp::parse_event(p.payload) else {
                    malformed += 1;
                    continue;
                };
                // One event = one timestamp, over all its packets and the three end packets.
                if c.last_event_ts == Some(p.timestamp) {
                    continue;
                }
                c.last_event_ts = Some(p.timestamp);
                if let Some(key) = rtp::dtmf_key(e.event) {
                    digits += 1;
                    self.events.push(Event::Digit { call: id, key });
                }
            }
            if let (Some(limit), Some(_)) = (self.cfg.inactivity, c.remote) {
                if !c.told_inactive && now.duration_since(c.last_rx) >= limit {
                    c.told_inactive = true;
                    self.events.push(Event::Inactive { call: id });
                }
            }
        }
        let relayed = self.forward();
        let mut s = lock(&self.shared.stats);
        s.frames_received += received;
        s.malformed += malformed;
        s.digits += digits;
        s.frames_relayed += relayed.0;
        s.send_errors += relayed.1;
    }

    /// Send the audio received on bridged calls out of their peers, as the peers' own stream
    /// (their SSRC, sequence numbers and timestamps), transcoded when the two legs' codecs differ.
    fn forward(&mut self) -> (u64, u64) {
        let mut out = [0u8; 2048];
        let (mut sent, mut errors) = (0u64, 0u64);
        let relay = std::mem::take(&mut self.relay);
        for (peer, codec, marker, payload) in &relay {
            let Some(c) = self.call_mut(*peer) else {
                continue;
            };
            let Some(remote) = c.remote else { continue };
            let body: std::borrow::Cow<'_, [u8]> = if *codec == c.codec {
                payload.as_slice().into()
            } else {
                c.codec.encode(&codec.decode(payload)).into()
            };
            let len = (rtp::HEADER + body.len()).min(out.len());
            rtp::write_header(
                &mut out,
                *marker || c.marker,
                c.codec.payload_type(),
                c.seq,
                c.ts,
                c.ssrc,
            );
            out[rtp::HEADER..len].copy_from_slice(&body[..len - rtp::HEADER]);
            c.marker = false;
            c.seq = c.seq.wrapping_add(1);
            c.ts = c.ts.wrapping_add(body.len() as u32);
            match c.sock.send_to(&out[..len], remote) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        self.relay = relay;
        self.relay.clear();
        (sent, errors)
    }

    fn send_frames(&mut self, slot: usize, tick: Instant) {
        let frame = self.frame;
        let step = frame as u32;
        let mut out = [0u8; rtp::HEADER + 480];
        let (mut sent, mut errors) = (0u64, 0u64);
        let send_silence = self.cfg.send_silence;
        for (&id, c) in self.slots[slot].iter_mut() {
            let Some(remote) = c.remote else { continue };
            if c.peer.is_some() {
                continue; // its peer's audio is what it sends
            }
            let len;
            if c.digit.is_none() && c.gap == 0 {
                if let Some(event) = c.keys.pop_front() {
                    let frames = (c.digit_ms * PER_MS).div_ceil(step);
                    c.digit = Some(DigitTx {
                        event,
                        start_ts: c.ts,
                        sent: 0,
                        frames,
                        ends: 3,
                    });
                }
            }
            if let (Some(d), Some(pt)) = (c.digit.as_mut(), c.dtmf.or(Some(101))) {
                d.sent = (d.sent + 1).min(d.frames);
                let end = d.sent >= d.frames;
                let duration = (d.sent * step).min(u16::MAX as u32) as u16;
                rtp::write_header(&mut out, d.sent == 1 && !end, pt, c.seq, d.start_ts, c.ssrc);
                rtp::write_event(
                    &mut out[rtp::HEADER..],
                    rtp::Event {
                        event: d.event,
                        end,
                        volume: 10,
                        duration,
                    },
                );
                len = rtp::HEADER + 4;
                if end {
                    d.ends -= 1;
                    if d.ends == 0 {
                        c.digit = None;
                        c.gap = 3;
                    }
                }
            } else if let Some((_, p)) = c.queue.front() {
                let bytes = p.bytes(c.codec);
                let take = (bytes.len() - c.offset).min(frame);
                rtp::write_header(
                    &mut out,
                    c.marker,
                    c.codec.payload_type(),
                    c.seq,
                    c.ts,
                    c.ssrc,
                );
                out[rtp::HEADER..rtp::HEADER + take]
                    .copy_from_slice(&bytes[c.offset..c.offset + take]);
                out[rtp::HEADER + take..rtp::HEADER + frame].fill(c.codec.silence());
                c.marker = false;
                c.offset += take;
                if c.offset >= bytes.len() {
                    if let Some((name, _)) = c.queue.pop_front() {
                        self.events.push(Event::Played {
                            call: id,
                            prompt: name,
                        });
                    }
                    c.offset = 0;
                    while let Some((name, p)) = c.queue.front() {
                        if !p.pcmu.is_empty() {
                            break;
                        }
                        self.events.push(Event::Played {
                            call: id,
                            prompt: name.clone(),
                        });
                        c.queue.pop_front();
                    }
                }
                len = rtp::HEADER + frame;
            } else if send_silence {
                c.gap = c.gap.saturating_sub(1);
                rtp::write_header(&mut out, false, c.codec.payload_type(), c.seq, c.ts, c.ssrc);
                out[rtp::HEADER..rtp::HEADER + frame].fill(c.codec.silence());
                c.marker = true;
                len = rtp::HEADER + frame;
            } else {
                c.gap = c.gap.saturating_sub(1);
                c.marker = true;
                c.ts = c.ts.wrapping_add(step);
                continue;
            }
            c.seq = c.seq.wrapping_add(1);
            c.ts = c.ts.wrapping_add(step);
            match c.sock.send_to(&out[..len], remote) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
            let late = Instant::now().saturating_duration_since(tick).as_micros() as u64;
            self.late
                .push((late / BUCKET_US).min(BUCKETS as u64 - 1) as u32);
        }
        let mut s = lock(&self.shared.stats);
        s.frames_sent += sent;
        s.send_errors += errors;
        for &b in &self.late {
            s.lateness[b as usize] += 1;
        }
        self.late.clear();
    }

    /// `frame_start`: this slot begins a frame (ticks count frames).
    fn publish(&mut self, overran: bool, frame_start: bool) {
        if frame_start || overran {
            let mut s = lock(&self.shared.stats);
            s.ticks += frame_start as u64;
            s.overruns += overran as u64;
        }
        if self.events.is_empty() {
            return;
        }
        let mut q = lock(&self.shared.events);
        let was_empty = q.is_empty();
        q.extend(self.events.drain(..));
        drop(q);
        if was_empty {
            let _ = (&self.shared.notify).write(&[1]);
        }
    }
}

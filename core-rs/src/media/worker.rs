//! The engine thread: the I/O loop, and the only place the media engine reads the clock.
//!
//! Calls are spread over the slots of a frame (2 ms each: ten for 20 ms frames), so that a
//! frame's sends are not one burst. Every 2 ms the thread wakes at a fixed schedule and, for the
//! calls of that slot, reads what each socket received, at most [`read_budget`] datagrams a
//! socket (RFC 4733 telephone-events from the far end become [`Event::Digit`]; packets from
//! anyone else are dropped and counted, see [`Call::heard`]), then sends each connected call
//! one frame: the next 20 ms of its prompt, an RFC 4733 digit being sent, or silence. Up to half
//! of the slot then goes to the sockets whose budget ran out. Commands are applied while the
//! thread waits for the next tick. `now` is stamped once per tick (and when a command arrives)
//! and handed to the calls' state ([`Call`]); how late each frame left is read after its send.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::call::{Call, Heard, Reject};
use super::channel::{lock, Cmd, Event, Shared};
use super::config::Config;
use super::g711::Codec;
use super::prompt::PER_MS;
use super::rtp;
use super::stats::Stats;

/// One slot of a frame's schedule.
const SLOT: Duration = Duration::from_millis(2);

/// Datagrams read from one call's socket per frame, for each 10 ms of the frame (16 at 20 ms).
/// In one 20 ms frame a far end sends at most two audio packets (10 ms is the shortest ptime),
/// as many telephone-event packets, and an event's end three times at once (RFC 4733 2.5.1.4):
/// seven. Sixteen leaves room for jitter that bunches two frames' worth, and what is not read in
/// this frame waits in the kernel's buffer for the next one, so a burst is late, not lost. A
/// flood at one port costs the thread sixteen reads a frame (~20 µs) before the frames are sent,
/// not every packet sent; after them, only a share of the slot ([`Worker::read_backlog`]). The
/// rest waits in, or overflows, that socket's buffer while the other calls go on time.
const READS_PER_10MS: usize = 8;

/// Reads past the budget, once a slot's frames left, go on until the middle of the slot (its
/// first 1/`BACKLOG_SHARE`). A flooded call then still hears its far end (most of 1 ms reads
/// some 500 datagrams: a frame's worth of a 25,000 packets/s flood), and a flood at every port at
/// once costs at most half a core, never the frames' time nor the wait in which commands apply.
const BACKLOG_SHARE: u32 = 2;

/// The datagrams read from one socket per frame of `ptime` ([`READS_PER_10MS`]).
pub(super) fn read_budget(ptime: Duration) -> usize {
    (ptime.as_millis() as usize / 10).max(1) * READS_PER_10MS
}

/// What one pass over a slot's sockets counted, added to [`Stats`] under one lock.
#[derive(Default)]
struct Counts {
    read: u64,
    backlog_reads: u64,
    received: u64,
    malformed: u64,
    digits: u64,
    rejected_source: u64,
    rejected_ssrc: u64,
    budget_exhausted: u64,
}

/// A call's socket and its media state.
struct Leg {
    sock: UdpSocket,
    call: Call,
    /// Its socket's budget was used up this frame: more may be waiting ([`Worker::read_backlog`]).
    backlog: bool,
}

/// Read up to `budget` datagrams from `leg`'s socket at `now`: digits into `events`, bridged
/// audio into `relay`, the rest counted in `n`. Returns how many were read.
fn read(
    id: u64,
    leg: &mut Leg,
    budget: usize,
    now: Instant,
    n: &mut Counts,
    events: &mut Vec<Event>,
    relay: &mut Vec<(u64, Codec, bool, Vec<u8>)>,
) -> usize {
    let mut buf = [0u8; 2048];
    let mut reads = 0;
    while reads < budget {
        let (len, from) = match leg.sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break, // WouldBlock, or an ICMP error from an earlier send
        };
        reads += 1;
        let Some(p) = rtp::parse(&buf[..len]) else {
            n.malformed += 1;
            continue;
        };
        match leg.call.heard(from, &p, now) {
            Heard::Rejected(Reject::Source) => n.rejected_source += 1,
            Heard::Rejected(Reject::Ssrc) => n.rejected_ssrc += 1,
            Heard::Audio(Some((peer, codec))) => {
                n.received += 1;
                relay.push((peer, codec, p.marker, p.payload.to_vec()));
            }
            Heard::Audio(None) | Heard::Event(None) | Heard::Repeat => n.received += 1,
            Heard::Malformed => {
                n.received += 1;
                n.malformed += 1;
            }
            Heard::Event(Some(key)) => {
                n.received += 1;
                n.digits += 1;
                events.push(Event::Digit { call: id, key });
            }
        }
    }
    n.read += reads as u64;
    reads
}

pub(super) struct Worker {
    cfg: Config,
    rx: Receiver<Cmd>,
    shared: Arc<Shared>,
    /// Calls by slot: call `id` is in `slots[id % slots.len()]`.
    slots: Vec<HashMap<u64, Leg>>,
    seed: u64,
    events: Vec<Event>,
    late: Vec<u32>,
    frame: usize,
    /// Datagrams read from one socket per frame ([`read_budget`]).
    budget: usize,
    /// Audio received on bridged calls this slot: (peer, codec, marker, payload).
    relay: Vec<(u64, Codec, bool, Vec<u8>)>,
}

impl Worker {
    pub(super) fn new(cfg: Config, rx: Receiver<Cmd>, shared: Arc<Shared>) -> Worker {
        let frame = (cfg.ptime.as_millis() as u32 * PER_MS) as usize;
        let n_slots = (cfg.ptime.as_millis() / SLOT.as_millis()).max(1) as usize;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Worker {
            budget: read_budget(cfg.ptime),
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

    fn leg_mut(&mut self, id: u64) -> Option<&mut Leg> {
        let n = self.slots.len() as u64;
        self.slots[(id % n) as usize].get_mut(&id)
    }

    fn call_mut(&mut self, id: u64) -> Option<&mut Call> {
        self.leg_mut(id).map(|l| &mut l.call)
    }

    pub(super) fn run(mut self) {
        let ptime = self.cfg.ptime;
        let step = ptime / self.slots.len() as u32;
        let mut tick = Instant::now() + step;
        let mut slot = 0usize;
        loop {
            loop {
                match self.rx.recv_deadline(tick) {
                    Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(cmd) => self.apply(cmd, Instant::now()),
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            let now = Instant::now();
            let overran = now > tick + ptime;
            self.receive(slot, now);
            self.send_frames(slot, tick);
            self.read_backlog(slot, tick + step / BACKLOG_SHARE);
            self.publish(overran, slot == 0);
            tick += step;
            slot = (slot + 1) % self.slots.len();
            let now = Instant::now();
            if now > tick + 5 * ptime {
                tick = now; // far behind: skip the lost ticks rather than burst them out
            }
        }
    }

    /// A command that arrived at `now`.
    fn apply(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Add { id, sock } => {
                let call = Call::new(self.random(), now);
                let n = self.slots.len() as u64;
                let leg = Leg {
                    sock,
                    call,
                    backlog: false,
                };
                self.slots[(id % n) as usize].insert(id, leg);
            }
            Cmd::Connect {
                id,
                remote,
                codec,
                dtmf,
            } => {
                if let Some(c) = self.call_mut(id) {
                    c.connect(remote, codec, dtmf, now);
                }
            }
            Cmd::Play { id, prompts } => {
                let n = self.slots.len() as u64;
                if let Some(leg) = self.slots[(id % n) as usize].get_mut(&id) {
                    leg.call.play(id, prompts, &mut self.events);
                }
            }
            Cmd::Stop { id } => {
                if let Some(c) = self.call_mut(id) {
                    c.stop();
                }
            }
            Cmd::Digits { id, keys, ms } => {
                if let Some(c) = self.call_mut(id) {
                    c.send_digits(keys, ms);
                }
            }
            Cmd::Bridge { a, b } => {
                let (pa, pb) = (
                    self.call_mut(a).and_then(|c| c.peer()),
                    self.call_mut(b).and_then(|c| c.peer()),
                );
                for old in [pa, pb].into_iter().flatten() {
                    if let Some(c) = self.call_mut(old) {
                        c.leave_bridge();
                    }
                }
                if self.call_mut(a).is_some() && self.call_mut(b).is_some() {
                    for (x, y) in [(a, b), (b, a)] {
                        if let Some(c) = self.call_mut(x) {
                            c.bridge(y);
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
        if let Some(peer) = self.call_mut(id).and_then(|c| c.leave_bridge()) {
            if let Some(p) = self.call_mut(peer) {
                p.peer_left();
            }
        }
    }

    /// Read the sockets of the calls of `slot`, each up to the budget; `now` is this tick's time.
    fn receive(&mut self, slot: usize, now: Instant) {
        let mut n = Counts::default();
        for (&id, leg) in self.slots[slot].iter_mut() {
            let reads = read(id, leg, self.budget, now, &mut n, &mut self.events, &mut self.relay);
            leg.backlog = reads == self.budget;
            n.budget_exhausted += leg.backlog as u64;
            if let Some(limit) = self.cfg.inactivity {
                if leg.call.went_silent(limit, now) {
                    self.events.push(Event::Inactive { call: id });
                }
            }
        }
        self.count(n);
    }

    /// After the slot's frames left, spend the time until `deadline` (mid-slot) on the
    /// sockets that used up their budget, a budget each in turn: a flooded call still hears its
    /// far end while the thread has time for it, never at the other calls' expense. `now` is
    /// stamped again after each budget read.
    fn read_backlog(&mut self, slot: usize, deadline: Instant) {
        let mut n = Counts::default();
        let mut now = Instant::now();
        let mut more = true;
        while more && now < deadline {
            more = false;
            for (&id, leg) in self.slots[slot].iter_mut().filter(|(_, l)| l.backlog) {
                let reads = read(id, leg, self.budget, now, &mut n, &mut self.events, &mut self.relay);
                leg.backlog = reads == self.budget;
                more |= leg.backlog;
                now = Instant::now();
                if now >= deadline {
                    break;
                }
            }
        }
        n.backlog_reads = n.read;
        self.count(n);
    }

    /// Add what was read to the totals, and relay the bridged calls' audio.
    fn count(&mut self, n: Counts) {
        let relayed = self.forward();
        let mut s = lock(&self.shared.stats);
        s.frames_received += n.received;
        s.malformed += n.malformed;
        s.digits += n.digits;
        s.rejected_source += n.rejected_source;
        s.rejected_ssrc += n.rejected_ssrc;
        s.budget_exhausted += n.budget_exhausted;
        s.backlog_reads += n.backlog_reads;
        s.frames_relayed += relayed.0;
        s.send_errors += relayed.1;
    }

    /// Send the audio received on bridged calls out of their peers, as the peers' own stream.
    /// Returns (sent, send errors).
    fn forward(&mut self) -> (u64, u64) {
        let mut out = [0u8; 2048];
        let (mut sent, mut errors) = (0u64, 0u64);
        let relay = std::mem::take(&mut self.relay);
        for (peer, codec, marker, payload) in &relay {
            let Some(leg) = self.leg_mut(*peer) else {
                continue;
            };
            let Some((len, remote)) = leg.call.relay_frame(*codec, *marker, payload, &mut out)
            else {
                continue;
            };
            match leg.sock.send_to(&out[..len], remote) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        self.relay = relay;
        self.relay.clear();
        (sent, errors)
    }

    /// Send one frame to each connected call of `slot`; `tick` is when they were due.
    fn send_frames(&mut self, slot: usize, tick: Instant) {
        let frame = self.frame;
        let mut out = [0u8; rtp::HEADER + 480];
        let (mut sent, mut errors) = (0u64, 0u64);
        let send_silence = self.cfg.send_silence;
        for (&id, leg) in self.slots[slot].iter_mut() {
            let Some((len, remote)) =
                leg.call
                    .next_frame(id, frame, send_silence, &mut out, &mut self.events)
            else {
                continue;
            };
            match leg.sock.send_to(&out[..len], remote) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
            // How late this frame left: measured after its send, so read here, not stamped.
            let late = Instant::now().saturating_duration_since(tick);
            self.late.push(Stats::bucket(late));
        }
        let mut s = lock(&self.shared.stats);
        s.frames_sent += sent;
        s.send_errors += errors;
        s.add_lateness(&self.late);
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

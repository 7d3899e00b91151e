//! The engine thread: the I/O loop, and the only place the media engine reads the clock.
//!
//! Calls are spread over the slots of a frame (2 ms each: ten for 20 ms frames), so that a
//! frame's sends are not one burst. Every 2 ms the thread wakes at a fixed schedule and, for the
//! calls of that slot, drains what each socket received (RFC 4733 telephone-events become
//! [`Event::Digit`]), then sends each connected call one frame: the next 20 ms of its prompt, an
//! RFC 4733 digit being sent, or silence. Commands are applied while the thread waits for the
//! next tick. `now` is stamped once per tick (and when a command arrives) and handed to the
//! calls' state ([`Call`]); how late each frame left is read after its send.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::call::{Call, Heard};
use super::channel::{lock, Cmd, Event, Shared};
use super::config::Config;
use super::g711::Codec;
use super::prompt::PER_MS;
use super::rtp;
use super::stats::Stats;

/// One slot of a frame's schedule.
const SLOT: Duration = Duration::from_millis(2);

/// A call's socket and its media state.
struct Leg {
    sock: UdpSocket,
    call: Call,
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
                self.slots[(id % n) as usize].insert(id, Leg { sock, call });
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

    /// Drain the sockets of the calls of `slot`; `now` is this tick's time.
    fn receive(&mut self, slot: usize, now: Instant) {
        let mut buf = [0u8; 2048];
        let (mut received, mut malformed, mut digits) = (0u64, 0u64, 0u64);
        for (&id, leg) in self.slots[slot].iter_mut() {
            loop {
                let n = match leg.sock.recv_from(&mut buf) {
                    Ok((n, _)) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break, // WouldBlock, or an ICMP error from an earlier send
                };
                let Some(p) = rtp::parse(&buf[..n]) else {
                    malformed += 1;
                    continue;
                };
                received += 1;
                match leg.call.heard(&p, now) {
                    Heard::Audio(Some((peer, codec))) => {
                        self.relay.push((peer, codec, p.marker, p.payload.to_vec()));
                    }
                    Heard::Audio(None) | Heard::Event(None) | Heard::Repeat => {}
                    Heard::Malformed => malformed += 1,
                    Heard::Event(Some(key)) => {
                        digits += 1;
                        self.events.push(Event::Digit { call: id, key });
                    }
                }
            }
            if let Some(limit) = self.cfg.inactivity {
                if leg.call.went_silent(limit, now) {
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

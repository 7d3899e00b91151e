//! One call's media state, sans-I/O: the next frame it sends, what a packet it received means,
//! and whether its far end went silent. No socket and no clock: the worker hands in each packet
//! and the buffer to fill, with `now` stamped once at the tick, or when the command arrived.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::Event;
use super::g711::Codec;
use super::prompt::{Prompt, PER_MS};
use super::rtp;

/// How long the pinned SSRC must have been silent before a new SSRC from the latched address is
/// taken instead. Carriers do switch streams within a call (an announcement or early media, then
/// the far end's phone; an SBC that re-anchors): the new stream comes from the same address with a
/// new SSRC and the old one stops. 500 ms is 25 packets of 20 ms: far longer than the gap between
/// two packets of a live stream, so a second stream sent beside the live one never takes over,
/// and short enough that after a genuine switch at most half a second of audio (or a key pressed
/// in it) is lost.
pub(super) const SSRC_HANDOVER: Duration = Duration::from_millis(500);

/// Where the far end's RTP comes from and which stream is its: learnt from the first packet
/// accepted after `connect` (symmetric RTP: behind a NAT, or from an SBC, it need not come from
/// the answer's `m=` port, only from its `c=` address).
#[derive(Clone, Copy)]
struct Latch {
    /// Its source, the IP in canonical form (an IPv4-mapped IPv6 address as IPv4).
    from: SocketAddr,
    ssrc: u32,
    /// When the pinned SSRC was last heard.
    last: Instant,
}

/// The RFC 4733 digit being sent.
struct DigitTx {
    event: u8,
    start_ts: u32,
    /// Frames sent so far for this event, and how many it lasts.
    sent: u32,
    frames: u32,
    /// End packets still to send (RFC 4733 2.5.1.4: the end is sent three times).
    ends: u8,
}

pub(super) struct Call {
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
    /// The last packet accepted from the far end (what inactivity counts from).
    last_rx: Instant,
    told_inactive: bool,
    /// The far end's source and stream, once its first packet came (`None`: not yet).
    latch: Option<Latch>,
    /// The SSRC and timestamp of the last RFC 4733 event heard (one event = one timestamp of
    /// one stream).
    last_event: Option<(u32, u32)>,
    /// The call this one's audio is relayed to (and from), while bridged.
    peer: Option<u64>,
}

/// What a received RTP packet was.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// Audio (any payload type but the far end's telephone-event): relay it to this peer in this
    /// codec (`None`: not bridged, or a codec this engine does not know).
    Audio(Option<(u64, Codec)>),
    /// The first packet of an RFC 4733 event: its key (`None`: an event that is not a DTMF key).
    Event(Option<char>),
    /// A later packet of an event already heard (its updates and its three end packets).
    Repeat,
    /// A telephone-event payload that does not parse.
    Malformed,
    /// Not the far end's: dropped (no liveness, no relay, no digit) and counted.
    Rejected(Reject),
}

/// Why a packet was not taken as the far end's.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Reject {
    /// Not from the IP the call was connected to, or (once latched) from another port; also
    /// anything before `connect`.
    Source,
    /// From the latched address, but another SSRC than the pinned one while that one is live.
    Ssrc,
}

impl Call {
    /// A call just opened at `now`: `random` gives its SSRC, first sequence number and first
    /// timestamp (RFC 3550 5.1: random).
    pub(super) fn new(random: u64, now: Instant) -> Call {
        Call {
            remote: None,
            codec: Codec::Pcmu,
            dtmf: None,
            ssrc: random as u32,
            seq: (random >> 32) as u16,
            ts: (random >> 16) as u32,
            queue: VecDeque::new(),
            offset: 0,
            marker: true,
            keys: VecDeque::new(),
            digit_ms: 100,
            digit: None,
            gap: 0,
            last_rx: now,
            told_inactive: false,
            latch: None,
            last_event: None,
            peer: None,
        }
    }

    pub(super) fn peer(&self) -> Option<u64> {
        self.peer
    }

    /// Where its RTP goes, in which codec, and the far end's telephone-event payload type; the
    /// far end's silence counts from `now`. Only packets from `remote`'s IP count from now on,
    /// and the first of them latches the source port and pins the SSRC again (a re-INVITE's new
    /// answer may move the far end).
    pub(super) fn connect(
        &mut self,
        remote: SocketAddr,
        codec: Codec,
        dtmf: Option<u8>,
        now: Instant,
    ) {
        self.remote = Some(remote);
        self.codec = codec;
        self.dtmf = dtmf;
        self.last_rx = now;
        self.told_inactive = false;
        self.latch = None;
    }

    /// Play these prompts in order, replacing whatever plays now.
    pub(super) fn play(
        &mut self,
        id: u64,
        prompts: Vec<(String, Arc<Prompt>)>,
        events: &mut Vec<Event>,
    ) {
        self.queue = prompts.into();
        self.offset = 0;
        self.marker = true;
        self.skip_empty(id, events);
    }

    pub(super) fn stop(&mut self) {
        self.queue.clear();
        self.offset = 0;
    }

    /// Queue RFC 4733 events to send, each lasting `ms`.
    pub(super) fn send_digits(&mut self, keys: Vec<u8>, ms: u32) {
        self.keys.extend(keys);
        self.digit_ms = ms;
    }

    /// Bridged to `peer`: its own prompts stop; what it sends from now is the peer's audio.
    pub(super) fn bridge(&mut self, peer: u64) {
        self.peer = Some(peer);
        self.queue.clear();
        self.offset = 0;
        self.marker = true;
    }

    /// Out of its bridge; returns the peer it had.
    pub(super) fn leave_bridge(&mut self) -> Option<u64> {
        self.peer.take()
    }

    /// Its peer took it out of their bridge: its own stream starts again (with the marker bit).
    pub(super) fn peer_left(&mut self) {
        self.peer = None;
        self.marker = true;
    }

    /// Report (and drop) prompts with no samples at the head of the queue.
    fn skip_empty(&mut self, id: u64, events: &mut Vec<Event>) {
        while let Some((name, p)) = self.queue.front() {
            if !p.is_empty() {
                break;
            }
            events.push(Event::Played {
                call: id,
                prompt: name.clone(),
            });
            self.queue.pop_front();
        }
    }

    /// A packet from `from` received at `now`. It counts only from the far end: from the IP the
    /// call was connected to, and from the port and with the SSRC of the first packet accepted
    /// since (a new SSRC is taken once the pinned one was silent for [`SSRC_HANDOVER`]). Anything
    /// else is [`Heard::Rejected`] and changes nothing: no liveness, no relay, no digit.
    pub(super) fn heard(&mut self, from: SocketAddr, p: &rtp::Packet<'_>, now: Instant) -> Heard {
        let Some(remote) = self.remote else {
            return Heard::Rejected(Reject::Source);
        };
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        match &mut self.latch {
            None if from.ip() != remote.ip().to_canonical() => {
                return Heard::Rejected(Reject::Source);
            }
            None => {
                self.latch = Some(Latch {
                    from,
                    ssrc: p.ssrc,
                    last: now,
                });
            }
            Some(l) if l.from != from => return Heard::Rejected(Reject::Source),
            Some(l) => {
                if p.ssrc != l.ssrc {
                    if now.saturating_duration_since(l.last) < SSRC_HANDOVER {
                        return Heard::Rejected(Reject::Ssrc);
                    }
                    l.ssrc = p.ssrc;
                }
                l.last = now;
            }
        }
        self.last_rx = now;
        self.told_inactive = false;
        if Some(p.payload_type) != self.dtmf {
            return Heard::Audio(self.peer.zip(Codec::from_payload_type(p.payload_type)));
        }
        let Some(e) = rtp::parse_event(p.payload) else {
            return Heard::Malformed;
        };
        // One event = one timestamp, over all its packets and the three end packets.
        let event = Some((p.ssrc, p.timestamp));
        if self.last_event == event {
            return Heard::Repeat;
        }
        self.last_event = event;
        Heard::Event(rtp::dtmf_key(e.event))
    }

    /// Whether the far end of this connected call has sent nothing for `limit` at `now`: true
    /// once per silence (a packet heard starts a new one).
    pub(super) fn went_silent(&mut self, limit: Duration, now: Instant) -> bool {
        if self.remote.is_none() || self.told_inactive {
            return false;
        }
        if now.duration_since(self.last_rx) >= limit {
            self.told_inactive = true;
            return true;
        }
        false
    }

    /// Audio `payload` in `codec` received on its peer, as this call's own stream (its SSRC,
    /// sequence numbers and timestamps), transcoded when the codecs differ. Writes the packet
    /// into `out`; returns its length and where to send it (`None`: not connected).
    pub(super) fn relay_frame(
        &mut self,
        codec: Codec,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let remote = self.remote?;
        let body: Cow<'_, [u8]> = if codec == self.codec {
            payload.into()
        } else {
            self.codec.encode(&codec.decode(payload)).into()
        };
        let len = (rtp::HEADER + body.len()).min(out.len());
        rtp::write_header(
            out,
            marker || self.marker,
            self.codec.payload_type(),
            self.seq,
            self.ts,
            self.ssrc,
        );
        out[rtp::HEADER..len].copy_from_slice(&body[..len - rtp::HEADER]);
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(body.len() as u32);
        Some((len, remote))
    }

    /// This frame's packet (`frame` samples): the digit being sent, the prompt, or silence.
    /// Writes it into `out` (at least 12 + `frame` bytes) and returns its length and where to
    /// send it; `None`: nothing to send (not connected, bridged, or silent without
    /// `send_silence`). A prompt that ends is reported in `events`.
    pub(super) fn next_frame(
        &mut self,
        id: u64,
        frame: usize,
        send_silence: bool,
        out: &mut [u8],
        events: &mut Vec<Event>,
    ) -> Option<(usize, SocketAddr)> {
        let remote = self.remote?;
        if self.peer.is_some() {
            return None; // its peer's audio is what it sends
        }
        let step = frame as u32;
        let len;
        if self.digit.is_none() && self.gap == 0 {
            if let Some(event) = self.keys.pop_front() {
                let frames = (self.digit_ms * PER_MS).div_ceil(step);
                self.digit = Some(DigitTx {
                    event,
                    start_ts: self.ts,
                    sent: 0,
                    frames,
                    ends: 3,
                });
            }
        }
        if let (Some(d), Some(pt)) = (self.digit.as_mut(), self.dtmf.or(Some(101))) {
            d.sent = (d.sent + 1).min(d.frames);
            let end = d.sent >= d.frames;
            let duration = (d.sent * step).min(u16::MAX as u32) as u16;
            rtp::write_header(
                out,
                d.sent == 1 && !end,
                pt,
                self.seq,
                d.start_ts,
                self.ssrc,
            );
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
                    self.digit = None;
                    self.gap = 3;
                }
            }
        } else if let Some((_, p)) = self.queue.front() {
            let bytes = p.bytes(self.codec);
            let take = (bytes.len() - self.offset).min(frame);
            rtp::write_header(
                out,
                self.marker,
                self.codec.payload_type(),
                self.seq,
                self.ts,
                self.ssrc,
            );
            out[rtp::HEADER..rtp::HEADER + take]
                .copy_from_slice(&bytes[self.offset..self.offset + take]);
            out[rtp::HEADER + take..rtp::HEADER + frame].fill(self.codec.silence());
            self.marker = false;
            self.offset += take;
            if self.offset >= bytes.len() {
                if let Some((name, _)) = self.queue.pop_front() {
                    events.push(Event::Played {
                        call: id,
                        prompt: name,
                    });
                }
                self.offset = 0;
                self.skip_empty(id, events);
            }
            len = rtp::HEADER + frame;
        } else if send_silence {
            self.gap = self.gap.saturating_sub(1);
            let pt = self.codec.payload_type();
            rtp::write_header(out, false, pt, self.seq, self.ts, self.ssrc);
            out[rtp::HEADER..rtp::HEADER + frame].fill(self.codec.silence());
            self.marker = true;
            len = rtp::HEADER + frame;
        } else {
            self.gap = self.gap.saturating_sub(1);
            self.marker = true;
            self.ts = self.ts.wrapping_add(step);
            return None;
        }
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(step);
        Some((len, remote))
    }
}

#[cfg(test)]
mod tests {
    //! Synthetic times: `t0` is only an origin; every later time is `t0 + d`.

    use super::*;
    use crate::media::g711;

    const FRAME: usize = 160;

    fn far() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 4000))
    }

    fn connected(t0: Instant) -> Call {
        let mut c = Call::new(0x1234_5678_9ABC_DEF0, t0);
        c.connect(far(), Codec::Pcmu, Some(101), t0);
        c
    }

    fn packet(pt: u8, ts: u32, payload: &[u8]) -> Vec<u8> {
        from_ssrc(9, pt, ts, payload)
    }

    fn from_ssrc(ssrc: u32, pt: u8, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; rtp::HEADER];
        rtp::write_header(&mut b, false, pt, 1, ts, ssrc);
        b.extend_from_slice(payload);
        b
    }

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    /// Key 1 (RFC 4733 event 1, start) at RTP timestamp `ts` of stream `ssrc`.
    fn key1(ssrc: u32, ts: u32) -> Vec<u8> {
        from_ssrc(ssrc, 101, ts, &[1, 0x0A, 0, 160])
    }

    fn hear(c: &mut Call, from: SocketAddr, b: &[u8], at: Instant) -> Heard {
        c.heard(from, &rtp::parse(b).unwrap(), at)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_silent_far_end_is_reported_once_per_silence() {
        let t0 = Instant::now();
        let mut c = Call::new(1, t0);
        assert!(!c.went_silent(ms(150), t0 + ms(1000)), "not connected yet");
        c.connect(far(), Codec::Pcmu, Some(101), t0 + ms(1000));
        assert!(!c.went_silent(ms(150), t0 + ms(1149)));
        assert!(c.went_silent(ms(150), t0 + ms(1150)));
        assert!(!c.went_silent(ms(150), t0 + ms(5000)), "reported once");
        let b = packet(0, 0, &[0xFF; 160]);
        c.heard(far(), &rtp::parse(&b).unwrap(), t0 + ms(6000));
        assert!(!c.went_silent(ms(150), t0 + ms(6100)));
        assert!(c.went_silent(ms(150), t0 + ms(6150)), "a new silence");
        // A time earlier than the last packet is no silence (saturates, no panic).
        c.connect(far(), Codec::Pcmu, Some(101), t0 + ms(9000));
        assert!(!c.went_silent(ms(150), t0 + ms(10)));
    }

    #[test]
    fn a_telephone_event_is_heard_once_and_audio_goes_to_the_peer() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let start = packet(101, 800, &[1, 0x0A, 0, 160]);
        let end = packet(101, 800, &[1, 0x8A, 3, 0x20]);
        let next = packet(101, 1600, &[11, 0x0A, 0, 160]);
        let flash = packet(101, 2400, &[16, 0x0A, 0, 160]);
        let hear = |c: &mut Call, b: &[u8]| c.heard(far(), &rtp::parse(b).unwrap(), t0);
        assert_eq!(hear(&mut c, &start), Heard::Event(Some('1')));
        assert_eq!(hear(&mut c, &start), Heard::Repeat);
        assert_eq!(hear(&mut c, &end), Heard::Repeat);
        assert_eq!(hear(&mut c, &next), Heard::Event(Some('#')));
        assert_eq!(hear(&mut c, &flash), Heard::Event(None));
        let short = packet(101, 3200, &[1, 0x0A]); // an event is 4 bytes
        assert_eq!(hear(&mut c, &short), Heard::Malformed);
        let audio = packet(8, 0, &[0xD5; 160]);
        assert_eq!(hear(&mut c, &audio), Heard::Audio(None));
        c.bridge(7);
        assert_eq!(hear(&mut c, &audio), Heard::Audio(Some((7, Codec::Pcma))));
        assert_eq!(hear(&mut c, &packet(18, 0, &[0; 20])), Heard::Audio(None));
    }

    #[test]
    fn a_prompt_goes_out_frame_by_frame_then_silence() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let mut events = Vec::new();
        let p = |n: usize| Arc::new(Prompt::new(&vec![1000; n]));
        let prompts = vec![("a".to_string(), p(240)), ("empty".to_string(), p(0))];
        c.play(3, prompts, &mut events);
        assert!(events.is_empty());
        let mut out = [0u8; rtp::HEADER + 480];
        let mut sent = Vec::new();
        for _ in 0..3 {
            let (len, to) = c.next_frame(3, FRAME, true, &mut out, &mut events).unwrap();
            assert_eq!((len, to), (rtp::HEADER + FRAME, far()));
            let r = rtp::parse(&out[..len]).unwrap();
            sent.push((r.marker, r.seq, r.timestamp, r.payload[0], r.payload[159]));
        }
        let (seq, ts) = (sent[0].1, sent[0].2);
        let (voice, silence) = (g711::linear_to_ulaw(1000), 0xFF);
        assert_eq!(
            sent,
            vec![
                (true, seq, ts, voice, voice),
                (false, seq + 1, ts + 160, voice, silence),
                (false, seq + 2, ts + 320, silence, silence),
            ]
        );
        let played = |p: &str| Event::Played {
            call: 3,
            prompt: p.into(),
        };
        assert_eq!(events, vec![played("a"), played("empty")]);
        // Without silence nothing is sent, but time (the RTP timestamp) goes on.
        assert_eq!(c.next_frame(3, FRAME, false, &mut out, &mut events), None);
        c.next_frame(3, FRAME, true, &mut out, &mut events).unwrap();
        let r = rtp::parse(&out[..rtp::HEADER + FRAME]).unwrap();
        assert_eq!((r.seq, r.timestamp), (seq + 3, ts + 640));
        c.bridge(5);
        assert_eq!(c.next_frame(3, FRAME, true, &mut out, &mut events), None);
    }

    #[test]
    fn a_digit_is_sent_as_one_event_with_three_ends_then_a_gap() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let mut events = Vec::new();
        c.send_digits(vec![5, 11], 100);
        let mut out = [0u8; rtp::HEADER + 480];
        let mut got = Vec::new();
        for _ in 0..15 {
            let (len, _) = c.next_frame(1, FRAME, true, &mut out, &mut events).unwrap();
            let r = rtp::parse(&out[..len]).unwrap();
            let e = (r.payload_type == 101).then(|| rtp::parse_event(r.payload).unwrap());
            got.push((
                r.marker,
                r.timestamp,
                e.map(|e| (e.event, e.end, e.duration)),
            ));
        }
        let first_ts = got[0].1;
        // 100 ms = 5 frames of 20 ms, then the end twice more, then 3 frames of silence.
        let digit: Vec<_> = got[..7].iter().map(|g| g.2.unwrap()).collect();
        let durations = [160, 320, 480, 640, 800, 800, 800];
        let want: Vec<_> = (0..7).map(|i| (5, i >= 4, durations[i])).collect();
        assert_eq!(digit, want);
        assert!(got[0].0 && got[1..7].iter().all(|g| !g.0));
        assert!(got[..7].iter().all(|g| g.1 == first_ts), "one timestamp");
        assert!(got[7..10].iter().all(|g| g.2.is_none()), "the gap");
        assert_eq!(got[10].2, Some((11, false, 160)));
        assert_eq!(got[10].1, first_ts.wrapping_add(10 * 160));
    }

    #[test]
    fn a_relayed_frame_is_the_peers_own_stream_in_its_codec() {
        let t0 = Instant::now();
        let mut c = Call::new(42, t0);
        let mut out = [0u8; 2048];
        let alaw = [g711::linear_to_alaw(-2000); 160];
        assert_eq!(c.relay_frame(Codec::Pcma, false, &alaw, &mut out), None);
        c.connect(far(), Codec::Pcmu, None, t0);
        let (len, to) = c.relay_frame(Codec::Pcma, false, &alaw, &mut out).unwrap();
        assert_eq!((len, to), (rtp::HEADER + 160, far()));
        let r = rtp::parse(&out[..len]).unwrap();
        let ulaw = g711::linear_to_ulaw(g711::alaw_to_linear(alaw[0]));
        assert_eq!((r.marker, r.payload_type, r.payload[0]), (true, 0, ulaw));
        let (first_seq, first_ts) = (r.seq, r.timestamp);
        let ulaw_in = [0x7Fu8; 160];
        let sent = c.relay_frame(Codec::Pcmu, false, &ulaw_in, &mut out);
        assert_eq!(sent, Some((len, far())), "the same codec: the same payload");
        let r = rtp::parse(&out[..len]).unwrap();
        assert_eq!((r.marker, r.payload), (false, &ulaw_in[..]));
        let next = (first_seq.wrapping_add(1), first_ts.wrapping_add(160));
        assert_eq!((r.seq, r.timestamp), next);
    }

    #[test]
    fn a_forged_source_is_rejected_and_changes_nothing() {
        let t0 = Instant::now();
        let mut c = Call::new(1, t0);
        let k = key1(9, 800);
        let rejected = Heard::Rejected(Reject::Source);
        assert_eq!(hear(&mut c, far(), &k, t0), rejected, "not connected yet");
        c.connect(far(), Codec::Pcmu, Some(101), t0);
        c.bridge(7);
        // Any other IP: nothing counts, not even audio for the bridge.
        for from in [addr([127, 0, 0, 2], 4000), addr([10, 0, 0, 1], 4000)] {
            assert_eq!(hear(&mut c, from, &k, t0 + ms(100)), rejected);
            let audio = packet(0, 0, &[0xFF; 160]);
            assert_eq!(hear(&mut c, from, &audio, t0 + ms(100)), rejected, "not relayed");
        }
        assert!(c.went_silent(ms(150), t0 + ms(150)), "no liveness from forged packets");
        // The far end's IP counts, also as an IPv4-mapped IPv6 address (a dual-stack socket).
        let v4_mapped = SocketAddr::new("::ffff:127.0.0.1".parse().unwrap(), 4000);
        assert_eq!(hear(&mut c, v4_mapped, &k, t0 + ms(200)), Heard::Event(Some('1')));
    }

    #[test]
    fn the_first_packet_latches_the_source_port() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        // A NAT, or an SBC, may send from another port than the answer's m=: the first packet wins.
        let sending = addr([127, 0, 0, 1], 4010);
        assert_eq!(hear(&mut c, sending, &key1(9, 800), t0), Heard::Event(Some('1')));
        for port in [4000, 4011, 5000] {
            let other = addr([127, 0, 0, 1], port);
            let got = hear(&mut c, other, &key1(9, 1600), t0 + ms(20));
            assert_eq!(got, Heard::Rejected(Reject::Source), "port {port}");
        }
        assert_eq!(hear(&mut c, sending, &key1(9, 1600), t0 + ms(40)), Heard::Event(Some('1')));
    }

    #[test]
    fn a_forged_ssrc_from_the_latched_address_is_rejected() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let audio = |ssrc: u32| from_ssrc(ssrc, 0, 0, &[0xFF; 160]);
        assert_eq!(hear(&mut c, far(), &audio(9), t0), Heard::Audio(None));
        // A second stream beside the live one never takes over, however long it goes on.
        for i in 1..100u64 {
            let at = t0 + ms(20 * i);
            let forged = hear(&mut c, far(), &key1(66, 800 + i as u32), at);
            assert_eq!(forged, Heard::Rejected(Reject::Ssrc), "packet {i}");
            assert_eq!(hear(&mut c, far(), &audio(9), at), Heard::Audio(None));
        }
    }

    #[test]
    fn a_new_ssrc_is_taken_after_the_pinned_one_went_silent() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        // An announcement (SSRC 9), then the subscriber's phone (SSRC 10) from the same address.
        assert_eq!(hear(&mut c, far(), &key1(9, 800), t0), Heard::Event(Some('1')));
        let early = t0 + SSRC_HANDOVER - ms(1);
        let rejected = Heard::Rejected(Reject::Ssrc);
        assert_eq!(hear(&mut c, far(), &key1(10, 800), early), rejected);
        // The same timestamp in a new stream is a new event, not a repeat of the old one's.
        let later = t0 + SSRC_HANDOVER;
        assert_eq!(hear(&mut c, far(), &key1(10, 800), later), Heard::Event(Some('1')));
        assert_eq!(hear(&mut c, far(), &key1(10, 800), later), Heard::Repeat);
        // Now 10 is pinned and live: the old stream coming back is the one refused.
        assert_eq!(hear(&mut c, far(), &key1(9, 1600), later + ms(20)), rejected);
    }

    #[test]
    fn connect_starts_a_new_latch() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let old = addr([127, 0, 0, 1], 4010);
        assert_eq!(hear(&mut c, old, &key1(9, 800), t0), Heard::Event(Some('1')));
        // A re-INVITE's answer moves the far end to another host: only that host counts now,
        // from whatever port and SSRC it sends first.
        let moved = addr([127, 0, 0, 5], 6000);
        c.connect(moved, Codec::Pcmu, Some(101), t0 + ms(20));
        let src = Heard::Rejected(Reject::Source);
        assert_eq!(hear(&mut c, old, &key1(9, 1600), t0 + ms(40)), src);
        let new_port = addr([127, 0, 0, 5], 6002);
        assert_eq!(hear(&mut c, new_port, &key1(77, 800), t0 + ms(60)), Heard::Event(Some('1')));
        assert_eq!(hear(&mut c, moved, &key1(77, 1600), t0 + ms(80)), src);
        // Connected again to the same address: the same stream goes on, its event heard once.
        c.connect(moved, Codec::Pcmu, Some(101), t0 + ms(100));
        assert_eq!(hear(&mut c, new_port, &key1(77, 800), t0 + ms(120)), Heard::Repeat);
    }
}

//! RTP (RFC 3550) packets and RFC 4733 telephone-events.

/// The fixed RTP header we send: version 2, no padding, extension or CSRC.
pub const HEADER: usize = 12;

/// A received RTP packet, borrowed from the datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Parse a datagram as RTP; `None` for anything that is not (too short, not version 2, a CSRC
/// list or extension running past the end, bad padding). RTCP on the same port (payload types
/// 72-76 with the marker bit) is refused too.
pub fn parse(d: &[u8]) -> Option<Packet<'_>> {
    if d.len() < HEADER || d[0] >> 6 != 2 {
        return None;
    }
    let padding = d[0] & 0x20 != 0;
    let extension = d[0] & 0x10 != 0;
    let csrc = (d[0] & 0x0F) as usize;
    let payload_type = d[1] & 0x7F;
    if (72..=76).contains(&payload_type) {
        return None;
    }
    let mut start = HEADER + 4 * csrc;
    if extension {
        let ext = d.get(start..start + 4)?;
        start += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    let mut end = d.len();
    if padding {
        let pad = *d.last()? as usize;
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(Packet {
        marker: d[1] & 0x80 != 0,
        payload_type,
        seq: u16::from_be_bytes([d[2], d[3]]),
        timestamp: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        payload: &d[start..end],
    })
}

/// Write a header into `out[..12]`.
pub fn write_header(
    out: &mut [u8],
    marker: bool,
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out[0] = 0x80;
    out[1] = (payload_type & 0x7F) | if marker { 0x80 } else { 0 };
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// An RFC 4733 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

pub fn parse_event(payload: &[u8]) -> Option<Event> {
    if payload.len() < 4 {
        return None;
    }
    Some(Event {
        event: payload[0],
        end: payload[1] & 0x80 != 0,
        volume: payload[1] & 0x3F,
        duration: u16::from_be_bytes([payload[2], payload[3]]),
    })
}

pub fn write_event(out: &mut [u8], e: Event) {
    out[0] = e.event;
    out[1] = (if e.end { 0x80 } else { 0 }) | (e.volume & 0x3F);
    out[2..4].copy_from_slice(&e.duration.to_be_bytes());
}

/// The DTMF key of an event code (0-9, *, #, A-D); `None` for the other events (flash, tones).
pub fn dtmf_key(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

pub fn dtmf_event(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut b = [0u8; 16];
        write_header(&mut b, true, 101, 65535, 0xDEAD_BEEF, 42);
        b[12..].copy_from_slice(&[1, 0x8A, 3, 0x20]);
        let p = parse(&b).unwrap();
        assert_eq!(
            (p.marker, p.payload_type, p.seq, p.timestamp, p.ssrc),
            (true, 101, 65535, 0xDEAD_BEEF, 42)
        );
        let e = parse_event(p.payload).unwrap();
        assert_eq!(
            e,
            Event {
                event: 1,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        let mut again = [0u8; 4];
        write_event(&mut again, e);
        assert_eq!(again, [1, 0x8A, 3, 0x20]);
    }

    #[test]
    fn refuses_what_is_not_rtp() {
        assert_eq!(parse(&[0x80; 11]), None);
        let mut b = [0u8; 20];
        write_header(&mut b, false, 0, 1, 2, 3);
        b[0] = 0x40; // version 1
        assert_eq!(parse(&b), None);
        b[0] = 0x8F; // 15 CSRCs: past the end
        assert_eq!(parse(&b), None);
        b[0] = 0x90; // an extension whose length runs past the end
        b[12..16].copy_from_slice(&[0, 0, 0, 9]);
        assert_eq!(parse(&b), None);
        b[0] = 0xA0; // padding longer than the packet
        b[19] = 200;
        assert_eq!(parse(&b), None);
        b[0] = 0x80;
        b[1] = 0xC8; // RTCP sender report
        assert_eq!(parse(&b), None);
    }

    #[test]
    fn dtmf_keys() {
        for k in "0123456789*#ABCD".chars() {
            assert_eq!(dtmf_key(dtmf_event(k).unwrap()), Some(k));
        }
        assert_eq!(dtmf_key(16), None);
        assert_eq!(dtmf_event('x'), None);
    }
}

//! The engine's totals, and the histogram of how late frames left against their schedule.

use std::time::Duration;

/// Width of one lateness bucket (µs) and their number (the last one holds everything later).
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 2001;

/// Totals since the engine started (or since [`MediaEngine::reset_stats`]).
///
/// [`MediaEngine::reset_stats`]: super::MediaEngine::reset_stats
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub calls: usize,
    pub ticks: u64,
    /// Ticks that began more than one frame late (the thread could not keep up).
    pub overruns: u64,
    pub frames_sent: u64,
    /// RTP packets taken from the calls' far ends (rejected ones not counted).
    pub frames_received: u64,
    /// Frames relayed from one bridged call to its peer.
    pub frames_relayed: u64,
    /// Datagrams on an RTP port that were not RTP (from anyone), and telephone-events from the
    /// far end whose payload does not parse.
    pub malformed: u64,
    pub digits: u64,
    /// RTP packets dropped as not from the far end: from another IP than the one the call was
    /// connected to, from another port than the latched one, or before `connect`.
    pub rejected_source: u64,
    /// RTP packets dropped from the far end's address with another SSRC than its pinned stream.
    pub rejected_ssrc: u64,
    /// Times a socket's read budget for a frame was used up (more may have been waiting: a flood,
    /// or a burst that waits for the next frame).
    pub budget_exhausted: u64,
    /// Datagrams read past a socket's budget, after a slot's frames left (up to half the slot).
    pub backlog_reads: u64,
    pub send_errors: u64,
    /// How late frames left against their schedule, in 100 µs buckets.
    lateness: Vec<u64>,
}

impl Stats {
    /// Zero totals, with an empty lateness histogram.
    pub(super) fn new() -> Stats {
        Stats {
            lateness: vec![0; BUCKETS],
            ..Stats::default()
        }
    }

    /// The lateness bucket of a frame that left `late` after its schedule.
    pub(super) fn bucket(late: Duration) -> u32 {
        let late = late.as_micros() as u64;
        (late / BUCKET_US).min(BUCKETS as u64 - 1) as u32
    }

    /// Count one frame in each of these lateness buckets (from [`Stats::bucket`]).
    pub(super) fn add_lateness(&mut self, buckets: &[u32]) {
        for &b in buckets {
            self.lateness[b as usize] += 1;
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_read_from_the_buckets() {
        let mut s = Stats::new();
        assert_eq!(s.lateness_ms(0.5), 0.0);
        let b = [
            Stats::bucket(Duration::from_micros(50)),
            Stats::bucket(Duration::from_micros(250)),
            Stats::bucket(Duration::from_millis(25)),
            Stats::bucket(Duration::from_secs(9)),
        ];
        assert_eq!(b, [0, 2, 250, 2000]);
        s.add_lateness(&b);
        assert_eq!(s.lateness_ms(0.25), 0.1);
        assert_eq!(s.lateness_ms(0.5), 0.3);
        assert_eq!(s.lateness_ms(1.0), 200.1);
        assert_eq!(s.later_than(20.0), 2);
    }
}

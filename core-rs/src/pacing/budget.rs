//! The abandon budget: live answers and abandons over the regulatory window (24 h in the UK,
//! 30 days in the US), in buckets of `window / BUCKETS` seconds.
//!
//! The budget is how many more abandons the window can take: `target * answers - abandons`.
//! Because the window slides, answers leave it as time passes; the *conservative* budget is the
//! smallest budget over the next `lookahead` seconds if nothing new happened, so the engine
//! never spends abandons that yesterday's answers are about to take away.

use std::collections::VecDeque;

/// Buckets per window: 42 s buckets for a 24 h window, 21 min for 30 days.
pub const BUCKETS: f64 = 2048.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: i64,
    answers: u64,
    abandons: u64,
}

#[derive(Debug, Clone)]
pub struct AbandonWindow {
    window: f64,
    width: f64,
    buckets: VecDeque<Bucket>,
    answers: u64,
    abandons: u64,
}

impl AbandonWindow {
    pub fn new(window: f64) -> Self {
        AbandonWindow {
            window,
            width: window / BUCKETS,
            buckets: VecDeque::new(),
            answers: 0,
            abandons: 0,
        }
    }

    pub fn window(&self) -> f64 {
        self.window
    }

    /// Re-bucket for a new window length: every bucket keeps its start time.
    pub fn set_window(&mut self, window: f64, now: f64) {
        let old = std::mem::replace(self, AbandonWindow::new(window));
        for b in old.buckets {
            let t = b.index as f64 * old.width;
            self.add(t, b.answers, b.abandons);
        }
        self.expire(now);
    }

    fn index(&self, t: f64) -> i64 {
        (t / self.width).floor() as i64
    }

    fn add(&mut self, now: f64, answers: u64, abandons: u64) {
        let index = self.index(now);
        match self.buckets.back_mut() {
            Some(b) if b.index >= index => {
                b.answers += answers;
                b.abandons += abandons;
            }
            _ => self.buckets.push_back(Bucket {
                index,
                answers,
                abandons,
            }),
        }
        self.answers += answers;
        self.abandons += abandons;
    }

    pub fn answered(&mut self, now: f64) {
        self.expire(now);
        self.add(now, 1, 0);
    }

    pub fn abandoned(&mut self, now: f64) {
        self.expire(now);
        self.add(now, 0, 1);
    }

    /// Drop the buckets that have left the window ending at `now`.
    pub fn expire(&mut self, now: f64) {
        let oldest = self.index(now) - BUCKETS as i64 + 1;
        while let Some(b) = self.buckets.front() {
            if b.index >= oldest {
                break;
            }
            self.answers -= b.answers;
            self.abandons -= b.abandons;
            self.buckets.pop_front();
        }
    }

    /// Live answers and abandons in the window ending at the last `expire`.
    pub fn counts(&self) -> (u64, u64) {
        (self.answers, self.abandons)
    }

    /// `target * answers - abandons`, minimised over the next `lookahead` seconds of buckets
    /// leaving the window.
    pub fn conservative_budget(&self, now: f64, target: f64, lookahead: f64) -> f64 {
        let (mut answers, mut abandons) = (self.answers as f64, self.abandons as f64);
        let mut budget = target * answers - abandons;
        let leaving_before = self.index(now + lookahead) - BUCKETS as i64 + 1;
        for b in &self.buckets {
            if b.index >= leaving_before {
                break;
            }
            answers -= b.answers as f64;
            abandons -= b.abandons as f64;
            budget = budget.min(target * answers - abandons);
        }
        budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_and_lookahead_sees_answers_leaving() {
        let mut w = AbandonWindow::new(2048.0); // 1 s buckets
        for i in 0..100 {
            w.answered(i as f64 * 0.1); // 100 answers in the first 10 s
        }
        w.abandoned(10.0);
        assert_eq!(w.counts(), (100, 1));
        assert!((w.conservative_budget(10.0, 0.03, 0.0) - 2.0).abs() < 1e-9);
        // In 2040 s the first answers leave: looking that far ahead, the budget goes negative.
        assert!(w.conservative_budget(10.0, 0.03, 2045.0) < 0.0);
        w.expire(2048.0 + 5.5);
        let (answers, abandons) = w.counts();
        assert!(
            answers < 100 && answers > 0 && abandons == 1,
            "{answers} {abandons}"
        );
        w.expire(1e6);
        assert_eq!(w.counts(), (0, 0));
    }

    #[test]
    fn rebucketing_keeps_counts() {
        let mut w = AbandonWindow::new(86_400.0);
        for i in 0..50 {
            w.answered(i as f64);
        }
        w.abandoned(49.0);
        w.set_window(3_600.0, 50.0);
        assert_eq!(w.counts(), (50, 1));
    }
}

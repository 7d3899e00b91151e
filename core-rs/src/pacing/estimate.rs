//! Online estimators, robust to censoring.
//!
//! A [`Cohort`] holds the last `cap` things that *started* (calls dialled, agents' talk-and-wrap
//! periods), finished or not. Estimating from the finished ones alone is biased: a campaign's
//! first failures come back in a second or two while its answers take ten, and the first agents
//! free are the ones with short calls. So the ones still going count as censored observations:
//! Kaplan-Meier for one kind of ending, Aalen-Johansen cumulative incidence for competing ones
//! (a call ends with a live answer, or without one). The curves are step functions read on a grid
//! into [`Table`]s, which the decision reads in O(1) per call or agent.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: f64,
    /// NaN while it lasts.
    end: f64,
    kind: u8,
}

/// The last `cap` started things, finished (with a kind) or still going.
#[derive(Debug, Clone)]
pub struct Cohort {
    cap: usize,
    entries: VecDeque<Entry>,
    /// Id of `entries[0]`.
    first_id: u64,
    /// Finished ones as (duration, kind), sorted by duration.
    finished: Vec<(f64, u8)>,
    /// Finished since the last refresh.
    pub(crate) fresh: u32,
}

/// Kinds of ending a cohort tells apart.
pub const MAX_KINDS: usize = 2;

/// Curves stop where fewer than this many are still at risk.
pub const MIN_AT_RISK: f64 = 10.0;

/// Kind of ending that removes an entry from view without being an observation (an agent who
/// went away mid-call): it stays censored at the time it left.
pub const CENSORED: u8 = u8::MAX;

impl Cohort {
    pub fn new(cap: usize) -> Self {
        Cohort {
            cap,
            entries: VecDeque::with_capacity(cap),
            first_id: 0,
            finished: Vec::new(),
            fresh: 0,
        }
    }

    /// Something started at `start`; the id closes it later.
    pub fn open(&mut self, start: f64) -> u64 {
        if self.entries.len() == self.cap {
            if let Some(old) = self.entries.pop_front() {
                if !old.end.is_nan() && old.kind != CENSORED {
                    let d = old.end - old.start;
                    let at = self.finished.partition_point(|x| x.0 < d);
                    if let Some(i) =
                        (at..self.finished.len()).find(|&i| self.finished[i] == (d, old.kind))
                    {
                        self.finished.remove(i);
                    }
                }
            }
            self.first_id += 1;
        }
        self.entries.push_back(Entry {
            start,
            end: f64::NAN,
            kind: 0,
        });
        self.first_id + self.entries.len() as u64 - 1
    }

    /// The thing `id` ended at `end` with `kind` (a no-op once it has left the cohort).
    pub fn close(&mut self, id: u64, end: f64, kind: u8) {
        let Some(e) = id
            .checked_sub(self.first_id)
            .and_then(|i| self.entries.get_mut(i as usize))
        else {
            return;
        };
        if !e.end.is_nan() {
            return;
        }
        e.end = end;
        e.kind = kind;
        if kind != CENSORED {
            let d = (end - e.start).max(0.0);
            let at = self.finished.partition_point(|x| x.0 < d);
            self.finished.insert(at, (d, kind));
            self.fresh += 1;
        }
    }

    /// Finished observations held.
    pub fn finished(&self) -> usize {
        self.finished.len()
    }

    /// Mean duration of the finished ones of `kind` (0 with none).
    pub fn mean(&self, kind: u8) -> f64 {
        let (sum, n) = self
            .finished
            .iter()
            .filter(|x| x.1 == kind)
            .fold((0.0, 0u32), |(s, n), x| (s + x.0, n + 1));
        if n == 0 {
            0.0
        } else {
            sum / f64::from(n)
        }
    }

    /// Aalen-Johansen estimate at `now`: overall survival and the cumulative incidence of each of
    /// `kinds` kinds (kind `k < kinds`), as step functions over the distinct end times.
    pub fn curves(&self, now: f64, kinds: usize, out: &mut Curves) {
        out.times.clear();
        out.surv.clear();
        out.cif.clear();
        out.kinds = kinds;
        // Censoring times, ascending: still-going entries (oldest start = longest) and the ones
        // censored on purpose.
        let mut censored = std::mem::take(&mut out.censored);
        censored.clear();
        censored.extend(
            self.entries
                .iter()
                .filter(|e| e.end.is_nan() || e.kind == CENSORED)
                .map(|e| {
                    if e.end.is_nan() {
                        now - e.start
                    } else {
                        e.end - e.start
                    }
                    .max(0.0)
                }),
        );
        // Entries are in start order, so the still-going ones' times come out descending.
        censored.reverse();
        if !censored.is_sorted() {
            censored.sort_unstable_by(f64::total_cmp);
        }
        let mut at_risk = (self.finished.len() + censored.len()) as f64;
        let (mut surv, mut cif) = (1.0, [0.0; MAX_KINDS]);
        let kinds = kinds.min(MAX_KINDS);
        let (mut i, mut c) = (0, 0);
        let f = &self.finished;
        out.horizon = f
            .last()
            .map_or(0.0, |x| x.0)
            .max(censored.last().copied().unwrap_or(0.0));
        while i < f.len() {
            let t = f[i].0;
            // Censored strictly before t leave the risk set first.
            while c < censored.len() && censored[c] < t {
                at_risk -= 1.0;
                c += 1;
            }
            let mut d = [0.0; MAX_KINDS];
            let mut total = 0.0;
            while i < f.len() && f[i].0 == t {
                if let Some(x) = d.get_mut(f[i].1 as usize) {
                    *x += 1.0;
                }
                total += 1.0;
                i += 1;
            }
            if at_risk < MIN_AT_RISK {
                // Too few left to say anything (one long call ending would drop survival to 0
                // and announce every agent as about to be free): the curve stops here.
                out.horizon = t;
                break;
            }
            for k in 0..kinds {
                cif[k] += surv * d[k] / at_risk;
            }
            surv *= 1.0 - total / at_risk;
            at_risk -= total;
            out.times.push(t);
            out.surv.push(surv);
            out.cif.extend_from_slice(&cif[..kinds]);
        }
        out.censored = censored;
    }
}
/// Step functions from [`Cohort::curves`]: `surv[j]` and `cif[j * kinds + k]` hold from
/// `times[j]` on; before `times[0]` survival is 1 and incidence 0.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub times: Vec<f64>,
    pub surv: Vec<f64>,
    pub cif: Vec<f64>,
    pub kinds: usize,
    /// The longest time observed (finished or censored): beyond it nothing is known.
    pub horizon: f64,
    censored: Vec<f64>,
}

impl Curves {
    /// Survival and cumulative incidence of `kind` at ascending points `xs`, by one merge walk.
    pub fn at(
        &self,
        kind: usize,
        xs: impl Iterator<Item = f64>,
        surv: &mut Vec<f64>,
        cif: &mut Vec<f64>,
    ) {
        surv.clear();
        cif.clear();
        let mut j = 0;
        for x in xs {
            while j < self.times.len() && self.times[j] <= x {
                j += 1;
            }
            if j == 0 {
                surv.push(1.0);
                cif.push(0.0);
            } else {
                surv.push(self.surv[j - 1]);
                cif.push(self.cif[(j - 1) * self.kinds + kind]);
            }
        }
    }

    pub fn last_surv(&self) -> f64 {
        self.surv.last().copied().unwrap_or(1.0)
    }

    pub fn last_cif(&self, kind: usize) -> f64 {
        if self.times.is_empty() {
            0.0
        } else {
            self.cif[(self.times.len() - 1) * self.kinds + kind]
        }
    }

    /// Smallest end time by which survival falls to `level` or below (None if never).
    pub fn time_to_surv(&self, level: f64) -> Option<f64> {
        (0..self.times.len())
            .find(|&j| self.surv[j] <= level)
            .map(|j| self.times[j])
    }

    /// Smallest end time by which the incidence of `kind` reaches `level` (None if never).
    pub fn time_to_cif(&self, kind: usize, level: f64) -> Option<f64> {
        (0..self.times.len())
            .find(|&j| self.cif[j * self.kinds + kind] >= level)
            .map(|j| self.times[j])
    }
}

/// A function of elapsed time sampled on a uniform grid `0, step, 2*step, ...`; read by
/// truncation, with the last value holding beyond the grid.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub step: f64,
    pub values: Vec<f64>,
}

impl Table {
    #[inline]
    pub fn at(&self, t: f64) -> f64 {
        let n = self.values.len();
        if n == 0 {
            return 0.0;
        }
        let i = (t / self.step) as usize; // saturates: negative and NaN give 0
        self.values[i.min(n - 1)]
    }
}

/// `H` tables on one grid, stored row by row: one lookup reads every horizon's value.
#[derive(Debug, Clone, Default)]
pub struct Packed<const H: usize> {
    inv_step: f64,
    rows: Vec<[f64; H]>,
}

impl<const H: usize> Packed<H> {
    /// Pack `tables` (which share a grid: built from one curve with the same points).
    pub fn pack(&mut self, tables: &[Table; H]) {
        let n = tables.iter().map(|t| t.values.len()).min().unwrap_or(0);
        debug_assert!(tables
            .iter()
            .all(|t| t.step == tables[0].step && t.values.len() == n));
        self.inv_step = if n == 0 { 0.0 } else { 1.0 / tables[0].step };
        self.rows.clear();
        self.rows
            .extend((0..n).map(|i| std::array::from_fn(|k| tables[k].values[i])));
    }

    #[inline]
    pub fn at(&self, t: f64) -> [f64; H] {
        let n = self.rows.len();
        if n == 0 {
            return [0.0; H];
        }
        let i = (t * self.inv_step) as usize; // saturates: negative and NaN give 0
        self.rows[i.min(n - 1)]
    }
}

fn grid(horizon: f64, points: usize) -> f64 {
    horizon.max(1.0) / (points - 1) as f64
}

/// `P(ends within h more | lasted t)` from a one-kind Kaplan-Meier curve: `1 - S(t+h) / S(t)`.
/// Beyond what was observed the chance is 0 (conservative: an agent overdue is not counted on).
pub fn completion_table(
    c: &Curves,
    h: f64,
    points: usize,
    out: &mut Table,
    scratch: &mut [Vec<f64>; 4],
) {
    let step = grid(c.horizon, points);
    let [s_t, c_t, s_th, c_th] = scratch;
    c.at(0, (0..points).map(|i| i as f64 * step), s_t, c_t);
    c.at(0, (0..points).map(|i| i as f64 * step + h), s_th, c_th);
    out.step = step;
    out.values.clear();
    out.values
        .extend(s_t.iter().zip(s_th.iter()).map(|(&a, &b)| ratio(a - b, a)));
}

/// `P(ends within h - w more | lasted t)` averaged over the wrap-up quantiles `w`: the chance
/// a talking agent who has talked `t` seconds is free within `h` (the rest of the talk, then a
/// whole wrap-up).
pub fn talk_table(
    c: &Curves,
    wraps: &[f64],
    h: f64,
    points: usize,
    out: &mut Table,
    scratch: &mut [Vec<f64>; 4],
) {
    let step = grid(c.horizon, points);
    let [s_t, c_t, s_th, c_th] = scratch;
    c.at(0, (0..points).map(|i| i as f64 * step), s_t, c_t);
    out.step = step;
    out.values.clear();
    out.values.resize(points, 0.0);
    for &w in wraps {
        let left = h - w;
        if left <= 0.0 {
            continue;
        }
        c.at(0, (0..points).map(|i| i as f64 * step + left), s_th, c_th);
        for i in 0..points {
            out.values[i] += ratio(s_t[i] - s_th[i], s_t[i]) / wraps.len() as f64;
        }
    }
}

/// What a call's ring time says, from the dial cohort's curves (kind 0 = live answer):
/// - `p`: live-answer probability of a new call,
/// - `answer_by[k]`: share of live answers that come within `horizons[k]`,
/// - `within[k]`: table of `P(live answer in (r, r + horizons[k]] | unresolved at r)`.
///
/// What is still unresolved beyond the longest time observed counts as a live answer at once:
/// conservative while the campaign is young, nothing once every call of the cohort rang out.
pub fn ring_tables<const H: usize>(
    c: &Curves,
    horizons: &[f64; H],
    points: usize,
    within: &mut [Table; H],
    scratch: &mut [Vec<f64>; 4],
) -> (f64, [f64; H]) {
    let tail = c.last_surv();
    let p = (c.last_cif(0) + tail).clamp(1e-3, 1.0);
    let beyond = |t: f64, cif: f64| {
        if t > c.horizon {
            c.last_cif(0) + tail
        } else {
            cif
        }
    };
    let step = grid(c.horizon, points);
    let [s_r, c_r, s_rh, c_rh] = scratch;
    c.at(0, (0..points).map(|i| i as f64 * step), s_r, c_r);
    let mut answer_by = [0.0; H];
    for k in 0..H {
        let h = horizons[k];
        let (mut s1, mut c1) = (Vec::new(), Vec::new());
        c.at(0, std::iter::once(h), &mut s1, &mut c1);
        answer_by[k] = (beyond(h, c1[0]) / p).clamp(0.0, 1.0);
        c.at(0, (0..points).map(|i| i as f64 * step + h), s_rh, c_rh);
        within[k].step = step;
        within[k].values.clear();
        within[k].values.extend((0..points).map(|i| {
            let t = i as f64 * step;
            ratio(beyond(t + h, c_rh[i]) - c_r[i], s_r[i])
        }));
    }
    (p, answer_by)
}

#[inline]
fn ratio(num: f64, den: f64) -> f64 {
    if den <= 1e-12 {
        0.0
    } else {
        (num / den).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaplan_meier_counts_the_ones_still_going() {
        // 10 periods started at 0: 5 ended at 10 s, 5 still going at 100 s. Ignoring the ones
        // going would say "everything ends by 10 s".
        let mut c = Cohort::new(100);
        let ids: Vec<u64> = (0..10).map(|_| c.open(0.0)).collect();
        for id in &ids[..5] {
            c.close(*id, 10.0, 0);
        }
        let mut cu = Curves::default();
        c.curves(100.0, 1, &mut cu);
        assert_eq!(cu.times, vec![10.0]);
        assert!((cu.last_surv() - 0.5).abs() < 1e-12);
        let mut t = Table::default();
        completion_table(&cu, 5.0, 101, &mut t, &mut Default::default());
        assert!(
            (t.at(8.0) - 0.5).abs() < 1e-9,
            "lasted 8 s: half of those at risk end at 10 s, {}",
            t.at(8.0)
        );
        assert_eq!(
            t.at(50.0),
            0.0,
            "past every end seen, nothing is counted on"
        );
    }

    #[test]
    fn competing_risks_do_not_see_fast_failures_as_the_answer_rate() {
        // 100 calls dialled at 0: at 3 s, 20 failed fast; none answered yet.
        let mut c = Cohort::new(1000);
        let ids: Vec<u64> = (0..100).map(|_| c.open(0.0)).collect();
        for id in &ids[..20] {
            c.close(*id, 1.0, 1);
        }
        let mut cu = Curves::default();
        c.curves(3.0, 2, &mut cu);
        let mut within = [Table::default(), Table::default()];
        let (p, _) = ring_tables(&cu, &[8.0, 15.0], 64, &mut within, &mut Default::default());
        assert!(
            p >= 0.79,
            "the 80 unresolved count as possible answers, not as failures: {p}"
        );
        // Later: 30 answered at 8 s, 50 no-answer at 25 s.
        for id in &ids[20..50] {
            c.close(*id, 8.0, 0);
        }
        for id in &ids[50..] {
            c.close(*id, 25.0, 1);
        }
        c.curves(30.0, 2, &mut cu);
        let (p, by) = ring_tables(&cu, &[8.0, 15.0], 64, &mut within, &mut Default::default());
        assert!((p - 0.3).abs() < 1e-9, "{p}");
        assert_eq!(by, [1.0, 1.0]);
        // A call that has rung 5 s: 30 live of the 80 still unresolved, all within 8 s more.
        assert!(
            (within[0].at(5.0) - 30.0 / 80.0).abs() < 1e-9,
            "{}",
            within[0].at(5.0)
        );
        // Rung 10 s: no live answer comes after 8 s.
        assert_eq!(within[0].at(10.0), 0.0);
    }

    #[test]
    fn cohort_evicts_oldest() {
        let mut c = Cohort::new(3);
        for i in 0..5 {
            let id = c.open(f64::from(i));
            c.close(id, f64::from(i) + f64::from(i), 0);
        }
        assert_eq!(c.finished(), 3);
        assert!((c.mean(0) - 3.0).abs() < 1e-12);
        c.close(0, 100.0, 0); // gone: no-op
        assert_eq!(c.finished(), 3);
    }
}

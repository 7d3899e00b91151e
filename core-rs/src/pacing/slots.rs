//! Start times of everything in one state (ringing calls, talking agents, agents in wrap-up),
//! contiguous so the decision's loops read a plain `&[f64]`; each entry knows its owner's index,
//! so an entry moves or leaves in O(1).

use super::estimate::Packed;

#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub times: Vec<f64>,
    owners: Vec<usize>,
}

impl Slots {
    /// Add `owner`'s start time; returns its slot.
    pub fn insert(&mut self, owner: usize, t: f64) -> usize {
        self.times.push(t);
        self.owners.push(owner);
        self.times.len() - 1
    }

    /// Remove `slot`. The last entry moves into it: its owner is returned, to be told its new slot.
    pub fn remove(&mut self, slot: usize) -> Option<usize> {
        self.times.swap_remove(slot);
        self.owners.swap_remove(slot);
        self.owners.get(slot).copied()
    }

    /// The owner at `slot` moved to index `owner`.
    pub fn set_owner(&mut self, slot: usize, owner: usize) {
        self.owners[slot] = owner;
    }

    #[cfg(test)]
    pub fn owner(&self, slot: usize) -> usize {
        self.owners[slot]
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// `(sum of v, sum of v * (1 - v))` per horizon over `v = table(now - t)` for every start time
/// `t`: four independent accumulators, so the additions do not wait on each other.
#[inline]
pub fn sum_bernoulli<const H: usize>(
    times: &[f64],
    now: f64,
    table: &Packed<H>,
) -> ([f64; H], [f64; H]) {
    let mut mean = [[0.0; H]; 4];
    let mut var = [[0.0; H]; 4];
    let mut chunks = times.chunks_exact(4);
    for c in &mut chunks {
        for j in 0..4 {
            let v = table.at(now - c[j]);
            for k in 0..H {
                mean[j][k] += v[k];
                var[j][k] += v[k] * (1.0 - v[k]);
            }
        }
    }
    for &t in chunks.remainder() {
        let v = table.at(now - t);
        for k in 0..H {
            mean[0][k] += v[k];
            var[0][k] += v[k] * (1.0 - v[k]);
        }
    }
    let total =
        |a: &[[f64; H]; 4]| std::array::from_fn(|k| (a[0][k] + a[1][k]) + (a[2][k] + a[3][k]));
    (total(&mean), total(&var))
}

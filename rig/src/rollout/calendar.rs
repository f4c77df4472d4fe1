//! When each device next wants to be woken: a calendar of simulated-time buckets. A drill
//! takes every device due before a moment at once (a quantum's batch), so a binary heap's
//! per-device pops — a hundred thousand entries deep, missing the cache at every level —
//! were the control loop's largest cost; here a batch is a bucket or two, sorted once.

use std::collections::BTreeMap;

/// Devices `(when, index)` by when, in buckets of `width` simulated milliseconds.
#[derive(Debug)]
pub struct Calendar {
    width: u64,
    buckets: BTreeMap<u64, Vec<(u64, u32)>>,
}

impl Calendar {
    pub fn new(width: u64) -> Self {
        Self {
            width: width.max(1),
            buckets: BTreeMap::new(),
        }
    }

    pub fn push(&mut self, when: u64, index: u32) {
        self.buckets
            .entry(when / self.width)
            .or_default()
            .push((when, index));
    }

    /// The earliest `when` (`None`: nobody is waiting).
    pub fn first(&self) -> Option<u64> {
        self.buckets
            .values()
            .next()
            .and_then(|b| b.iter().map(|(t, _)| *t).min())
    }

    /// Removes every entry due before `until`, in `(when, index)` order (what popping a
    /// min-heap while its top is before `until` gives).
    pub fn take_before(&mut self, until: u64) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        while let Some(mut entry) = self.buckets.first_entry() {
            if entry.key().saturating_mul(self.width) >= until {
                break;
            }
            let bucket = entry.get_mut();
            if bucket.iter().all(|(t, _)| *t < until) {
                out.append(bucket);
                entry.remove();
                continue;
            }
            // Part of this bucket is due later; every later bucket is after it.
            out.extend(bucket.iter().copied().filter(|(t, _)| *t < until));
            bucket.retain(|(t, _)| *t >= until);
            break;
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// The same batches as a min-heap, whatever the order of pushes.
    #[test]
    fn batches_match_a_heap() {
        let mut cal = Calendar::new(60);
        let mut heap = BinaryHeap::new();
        let mut x = 12_345u64;
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            x >> 33
        };
        for i in 0..2_000u32 {
            let t = next() % 10_000;
            cal.push(t, i);
            heap.push(Reverse((t, i)));
        }
        while let Some(first) = cal.first() {
            assert_eq!(Some(first), heap.peek().map(|Reverse((t, _))| *t));
            let until = first + 1 + next() % 150;
            let mut want = Vec::new();
            while let Some(Reverse((t, i))) = heap.peek().copied() {
                if t >= until {
                    break;
                }
                heap.pop();
                want.push((t, i));
            }
            let got = cal.take_before(until);
            assert_eq!(got, want);
            // Some come back later, as woken devices do.
            for (t, i) in got.into_iter().filter(|(_, i)| i % 3 == 0) {
                let later = t + 1 + next() % 500;
                if later < 10_000 {
                    cal.push(later, i);
                    heap.push(Reverse((later, i)));
                }
            }
        }
        assert!(heap.is_empty());
    }
}

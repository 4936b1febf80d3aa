//! Running mean and variance in one pass (Welford), and the merge of two partial results
//! (Chan et al.), which is what lets concurrent batches and late points combine exactly.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Welford {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared differences from the mean.
    pub m2: f64,
}

impl Welford {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn merge(&mut self, other: &Welford) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        let (n_a, n_b, n) = (self.count as f64, other.count as f64, count as f64);
        self.mean += delta * n_b / n;
        self.m2 += other.m2 + delta * delta * n_a * n_b / n;
        self.count = count;
    }

    /// Population variance; `None` before any value.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.m2 / self.count as f64).max(0.0))
    }

    /// Sample variance (n − 1); `None` below two values.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).max(0.0))
    }

    pub fn stddev(&self) -> Option<f64> {
        self.sample_variance().map(f64::sqrt)
    }

    /// How many standard deviations `x` lies from the mean. `None` with fewer than two
    /// values, or when every value so far was the same (no spread to measure against).
    pub fn z(&self, x: f64) -> Option<f64> {
        let sd = self.stddev()?;
        // Relative floor: a spread this small against the mean is rounding, not signal.
        if sd <= f64::EPSILON * self.mean.abs().max(1.0) * 16.0 {
            return None;
        }
        Some((x - self.mean) / sd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn two_pass(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn known_values() {
        let mut w = Welford::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            w.push(x);
        }
        assert_eq!(w.count, 8);
        assert_eq!(w.mean, 5.0);
        assert_eq!(w.variance(), Some(4.0));
        assert!(close(w.sample_variance().unwrap(), 32.0 / 7.0));
        assert!(close(w.z(9.0).unwrap(), 4.0 / (32.0f64 / 7.0).sqrt()));
    }

    #[test]
    fn no_spread_means_no_z_score() {
        let mut w = Welford::default();
        assert_eq!(w.z(1.0), None);
        w.push(3.0);
        assert_eq!(w.z(1.0), None);
        w.push(3.0);
        w.push(3.0);
        assert_eq!(w.z(100.0), None);
    }

    #[test]
    fn large_offsets_stay_accurate() {
        // The naive sum-of-squares formula loses everything here; Welford does not.
        let mut w = Welford::default();
        for x in [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0] {
            w.push(x);
        }
        assert!(close(w.sample_variance().unwrap(), 30.0));
    }

    proptest! {
        #[test]
        fn matches_the_two_pass_formula(xs in prop::collection::vec(-1e6f64..1e6, 2..200)) {
            let mut w = Welford::default();
            xs.iter().for_each(|x| w.push(*x));
            let (mean, var) = two_pass(&xs);
            prop_assert!(close(w.mean, mean));
            prop_assert!((w.sample_variance().unwrap() - var).abs() <= 1e-6 * var.max(1.0));
        }

        #[test]
        fn merging_parts_equals_pushing_all(
            xs in prop::collection::vec(-1e4f64..1e4, 0..100),
            split in 0usize..100,
        ) {
            let split = split.min(xs.len());
            let (mut a, mut b, mut all) = (Welford::default(), Welford::default(), Welford::default());
            xs[..split].iter().for_each(|x| a.push(*x));
            xs[split..].iter().for_each(|x| b.push(*x));
            xs.iter().for_each(|x| all.push(*x));
            a.merge(&b);
            prop_assert_eq!(a.count, all.count);
            prop_assert!(close(a.mean, all.mean));
            prop_assert!((a.m2 - all.m2).abs() <= 1e-6 * all.m2.max(1.0));
        }
    }
}

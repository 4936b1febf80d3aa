//! Downsampling for history queries: at most `max_points` points that still show the
//! shape of the series. Min/max buckets: the first and last point, then for each of
//! `(max_points - 2) / 2` equal-count buckets its lowest and highest point, in time order.
//! Every spike survives (the global extremes are always some bucket's extremes), which
//! averaging or LTTB cannot promise.

use crate::ports::{Point, WindowRow};

/// The smallest `max_points` that keeps first, last and one bucket's extremes.
pub const MIN_POINTS: usize = 4;

pub fn min_max(points: &[Point], max_points: usize) -> Vec<Point> {
    let max_points = max_points.max(MIN_POINTS);
    if points.len() <= max_points {
        return points.to_vec();
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let interior = &points[1..points.len() - 1];
    let buckets = (max_points - 2) / 2;
    let mut out = Vec::with_capacity(2 + 2 * buckets);
    out.push(first);
    for b in 0..buckets {
        // Equal-count buckets: bucket b covers [b*n/k, (b+1)*n/k).
        let lo = b * interior.len() / buckets;
        let hi = (b + 1) * interior.len() / buckets;
        let bucket = &interior[lo..hi];
        let Some((min_at, max_at)) = extremes(bucket) else {
            continue;
        };
        let (a, z) = if min_at <= max_at {
            (min_at, max_at)
        } else {
            (max_at, min_at)
        };
        out.push(bucket[a]);
        if z != a {
            out.push(bucket[z]);
        }
    }
    out.push(last);
    out
}

/// Indexes of the first lowest and first highest value.
fn extremes(bucket: &[Point]) -> Option<(usize, usize)> {
    let mut iter = bucket.iter().enumerate();
    let (_, head) = iter.next()?;
    let (mut min_at, mut max_at) = (0, 0);
    let (mut min, mut max) = (head.value, head.value);
    for (i, p) in iter {
        if p.value < min {
            min = p.value;
            min_at = i;
        }
        if p.value > max {
            max = p.value;
            max_at = i;
        }
    }
    Some((min_at, max_at))
}

/// Window aggregates merged into at most `max_points` consecutive groups; count, mean and
/// variance combine exactly (Chan et al.), min and max are kept.
pub fn merge_windows(windows: &[WindowRow], max_points: usize) -> Vec<WindowRow> {
    let max_points = max_points.max(1);
    if windows.len() <= max_points {
        return windows.to_vec();
    }
    let per_group = windows.len().div_ceil(max_points);
    windows
        .chunks(per_group)
        .map(|group| {
            group
                .iter()
                .copied()
                .reduce(merge)
                .expect("chunks are never empty")
        })
        .collect()
}

fn merge(a: WindowRow, b: WindowRow) -> WindowRow {
    let count = a.count + b.count;
    if count == 0 {
        return WindowRow {
            start_ms: a.start_ms,
            ..a
        };
    }
    let (na, nb, n) = (a.count as f64, b.count as f64, count as f64);
    let delta = b.mean - a.mean;
    WindowRow {
        start_ms: a.start_ms,
        count,
        mean: a.mean + delta * nb / n,
        m2: a.m2 + b.m2 + delta * delta * na * nb / n,
        min: a.min.min(b.min),
        max: a.max.max(b.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                ts_ms: i as i64 * 1000,
                value: *v,
            })
            .collect()
    }

    #[test]
    fn short_series_pass_unchanged() {
        let points = series(&[1.0, 2.0, 3.0]);
        assert_eq!(min_max(&points, 10), points);
    }

    #[test]
    fn six_hundred_thousand_points_keep_ends_and_spikes() {
        let mut values: Vec<f64> = (0..600_000).map(|i| (i as f64 / 500.0).sin()).collect();
        values[123_457] = 99.0;
        values[400_001] = -99.0;
        let points = series(&values);
        let out = min_max(&points, 1000);
        assert!(out.len() <= 1000, "{}", out.len());
        assert_eq!(out.first(), points.first());
        assert_eq!(out.last(), points.last());
        assert!(out.contains(&points[123_457]));
        assert!(out.contains(&points[400_001]));
    }

    proptest! {
        #[test]
        fn bounded_ordered_and_extremes_kept(
            values in prop::collection::vec(-1e6f64..1e6, 0..3000),
            max_points in 0usize..200,
        ) {
            let points = series(&values);
            let out = min_max(&points, max_points);
            prop_assert!(out.len() <= max_points.max(MIN_POINTS));
            prop_assert!(out.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms));
            prop_assert!(out.iter().all(|p| points.contains(p)));
            if let (Some(first), Some(last)) = (points.first(), points.last()) {
                prop_assert_eq!(out.first(), Some(first));
                prop_assert_eq!(out.last(), Some(last));
                let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(out.iter().any(|p| p.value == lo));
                prop_assert!(out.iter().any(|p| p.value == hi));
            }
        }

        #[test]
        fn merged_windows_equal_the_windows_of_all_points(
            groups in prop::collection::vec(prop::collection::vec(-1e3f64..1e3, 1..20), 1..60),
            max_points in 1usize..20,
        ) {
            let window = |i: usize, values: &[f64]| {
                let n = values.len() as f64;
                let mean = values.iter().sum::<f64>() / n;
                WindowRow {
                    start_ms: i as i64 * 300_000,
                    count: values.len() as u64,
                    mean,
                    m2: values.iter().map(|v| (v - mean).powi(2)).sum(),
                    min: values.iter().cloned().fold(f64::INFINITY, f64::min),
                    max: values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                }
            };
            let windows: Vec<WindowRow> = groups.iter().enumerate().map(|(i, g)| window(i, g)).collect();
            let merged = merge_windows(&windows, max_points);
            prop_assert!(merged.len() <= max_points);
            prop_assert_eq!(merged[0].start_ms, 0);
            let all: Vec<f64> = groups.concat();
            let whole = window(0, &all);
            let total = merged.iter().copied().reduce(merge).unwrap();
            prop_assert_eq!(total.count, whole.count);
            prop_assert!((total.mean - whole.mean).abs() < 1e-6);
            prop_assert!((total.m2 - whole.m2).abs() < 1e-6 * whole.m2.max(1.0));
            prop_assert_eq!(total.min, whole.min);
            prop_assert_eq!(total.max, whole.max);
        }
    }
}

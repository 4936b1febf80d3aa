//! Tumbling windows: every reading belongs to exactly one window `[start, start + width)`,
//! aligned to the Unix epoch, by its own (measurement) time. A late reading is merged into
//! the window it belongs to, not the one that is open when it arrives.

use chrono::{DateTime, Duration, TimeZone, Utc};
use hub_events::Window;
use serde::{Deserialize, Serialize};

use crate::Welford;

/// The window of width `width` that holds `ts`. Widths under a millisecond count as one.
pub fn window_of(ts: DateTime<Utc>, width: Duration) -> Window {
    let width_ms = width.num_milliseconds().max(1);
    let start_ms = ts.timestamp_millis().div_euclid(width_ms) * width_ms;
    let start = Utc.timestamp_millis_opt(start_ms).single().unwrap_or(ts);
    Window {
        start,
        end: start + Duration::milliseconds(width_ms),
    }
}

/// Count, mean, spread and extremes of the readings of one window; two aggregates of the
/// same window merge exactly.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub stats: Welford,
    pub min: f64,
    pub max: f64,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self {
            stats: Welford::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// What is published and queried for a window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub count: u64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation; 0 for a single reading.
    pub stddev: f64,
}

impl Aggregate {
    pub fn push(&mut self, x: f64) {
        self.stats.push(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, other: &Aggregate) {
        self.stats.merge(&other.stats);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// `None` for an empty window.
    pub fn summary(&self) -> Option<WindowStats> {
        (self.stats.count > 0).then(|| WindowStats {
            count: self.stats.count,
            avg: self.stats.mean,
            min: self.min,
            max: self.max,
            stddev: self.stats.stddev().unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn five_minute_windows() {
        let w = window_of(at("2026-11-23T10:07:59.999Z"), Duration::minutes(5));
        assert_eq!(w.start, at("2026-11-23T10:05:00Z"));
        assert_eq!(w.end, at("2026-11-23T10:10:00Z"));
        let edge = window_of(at("2026-11-23T10:10:00Z"), Duration::minutes(5));
        assert_eq!(edge.start, at("2026-11-23T10:10:00Z"));
    }

    #[test]
    fn times_before_the_epoch_floor_downwards() {
        let w = window_of(at("1969-12-31T23:59:59Z"), Duration::minutes(1));
        assert_eq!(w.start, at("1969-12-31T23:59:00Z"));
    }

    #[test]
    fn a_late_reading_lands_in_its_own_window() {
        let width = Duration::minutes(5);
        let mut windows = std::collections::BTreeMap::<DateTime<Utc>, Aggregate>::new();
        for (ts, v) in [
            ("2026-11-23T10:01:00Z", 10.0),
            ("2026-11-23T10:06:00Z", 20.0),
            // Arrives after the 10:05 window opened, measured in the 10:00 one.
            ("2026-11-23T10:04:30Z", 30.0),
        ] {
            windows
                .entry(window_of(at(ts), width).start)
                .or_default()
                .push(v);
        }
        let first = windows[&at("2026-11-23T10:00:00Z")].summary().unwrap();
        assert_eq!(
            (first.count, first.avg, first.min, first.max),
            (2, 20.0, 10.0, 30.0)
        );
        assert_eq!(
            windows[&at("2026-11-23T10:05:00Z")]
                .summary()
                .unwrap()
                .count,
            1
        );
    }

    #[test]
    fn summary_of_known_values() {
        let mut a = Aggregate::default();
        assert_eq!(a.summary(), None);
        a.push(4.0);
        assert_eq!(a.summary().unwrap().stddev, 0.0);
        for x in [8.0, 6.0] {
            a.push(x);
        }
        let s = a.summary().unwrap();
        assert_eq!(
            (s.count, s.avg, s.min, s.max, s.stddev),
            (3, 6.0, 4.0, 8.0, 2.0)
        );
    }

    proptest! {
        #[test]
        fn every_time_is_inside_its_window(ms in -10_000_000_000_000i64..10_000_000_000_000, width_s in 1i64..86_400) {
            let ts = Utc.timestamp_millis_opt(ms).single().unwrap();
            let w = window_of(ts, Duration::seconds(width_s));
            prop_assert!(w.start <= ts && ts < w.end);
            prop_assert_eq!(w.end - w.start, Duration::seconds(width_s));
            prop_assert_eq!(w.start.timestamp_millis().rem_euclid(width_s * 1000), 0);
        }

        #[test]
        fn merged_aggregates_equal_one_aggregate(xs in prop::collection::vec(-1e3f64..1e3, 1..60), split in 0usize..60) {
            let split = split.min(xs.len());
            let (mut a, mut b, mut all) = (Aggregate::default(), Aggregate::default(), Aggregate::default());
            xs[..split].iter().for_each(|x| a.push(*x));
            xs[split..].iter().for_each(|x| b.push(*x));
            xs.iter().for_each(|x| all.push(*x));
            a.merge(&b);
            let (m, s) = (a.summary().unwrap(), all.summary().unwrap());
            prop_assert_eq!((m.count, m.min, m.max), (s.count, s.min, s.max));
            prop_assert!((m.avg - s.avg).abs() < 1e-9);
            prop_assert!((m.stddev - s.stddev).abs() < 1e-6);
        }
    }
}

//! Readings thinned for browsers: per device, the newest reading of each second of
//! measurement time, and of those only the newest few per batch, so a device that sends
//! a hundred readings a second (or forges a spread of timestamps) still reaches a console
//! as about one a second.

use std::collections::{BTreeMap, HashMap};

/// A normalized reading as the pusher forwards it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub device_id: String,
    pub ts_ms: i64,
    pub seq: Option<u64>,
    pub metrics: BTreeMap<String, f64>,
    pub simulated: bool,
}

/// Seconds of one device one batch forwards at most.
pub const MAX_SECONDS_PER_DEVICE: usize = 5;

/// The readings to push, in device then time order; the second value counts the readings
/// left out.
pub fn coalesce(readings: impl IntoIterator<Item = Reading>) -> (Vec<Reading>, usize) {
    let mut by_device: HashMap<String, BTreeMap<i64, Reading>> = HashMap::new();
    let mut total = 0;
    for reading in readings {
        total += 1;
        let seconds = by_device.entry(reading.device_id.clone()).or_default();
        let second = reading.ts_ms.div_euclid(1000);
        let newer = seconds
            .get(&second)
            .is_none_or(|kept| (reading.ts_ms, reading.seq) >= (kept.ts_ms, kept.seq));
        if newer {
            seconds.insert(second, reading);
        }
    }
    let mut devices: Vec<_> = by_device.into_iter().collect();
    devices.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept = Vec::new();
    for (_, seconds) in devices {
        let skip = seconds.len().saturating_sub(MAX_SECONDS_PER_DEVICE);
        kept.extend(seconds.into_values().skip(skip));
    }
    let left_out = total - kept.len();
    (kept, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, ts_ms: i64, value: f64) -> Reading {
        Reading {
            device_id: device.into(),
            ts_ms,
            seq: None,
            metrics: BTreeMap::from([("temperature".into(), value)]),
            simulated: false,
        }
    }

    #[test]
    fn a_noisy_device_is_thinned_to_its_newest_reading_per_second() {
        // d-1: 100 readings in one second, then one the next second; d-2: one reading.
        let mut batch: Vec<Reading> = (0..100)
            .map(|i| reading("d-1", 10_000 + i * 10, i as f64))
            .collect();
        batch.push(reading("d-1", 11_500, 500.0));
        batch.push(reading("d-2", 10_100, 7.0));
        let (kept, left_out) = coalesce(batch);
        let values: Vec<(&str, f64)> = kept
            .iter()
            .map(|r| (r.device_id.as_str(), r.metrics["temperature"]))
            .collect();
        assert_eq!(values, [("d-1", 99.0), ("d-1", 500.0), ("d-2", 7.0)]);
        assert_eq!(left_out, 99);
    }

    #[test]
    fn forged_spreads_of_timestamps_are_capped_per_batch() {
        let batch: Vec<Reading> = (0..60)
            .map(|i| reading("d-1", i * 60_000, i as f64))
            .collect();
        let (kept, left_out) = coalesce(batch);
        assert_eq!(kept.len(), MAX_SECONDS_PER_DEVICE);
        assert_eq!(left_out, 60 - MAX_SECONDS_PER_DEVICE);
        // The newest are kept.
        assert_eq!(kept.last().unwrap().metrics["temperature"], 59.0);
    }
}

//! How the hot store keys readings, shared by the writer (telemetry-store) and the
//! reader (history queries): one partition per device and metric, and a range key that
//! sorts by measurement time.

/// The partition key: `{device}#{metric}`.
pub fn series(device_id: &str, metric: &str) -> String {
    format!("{device_id}#{metric}")
}

/// The hot store's range key: measurement time (epoch ms, fixed width so that string
/// order is time order), then the device's seq. Two readings of a device at the same
/// millisecond (a clock-corrected reading lands on the receive time, which another
/// reading may carry too) stay two rows; the same reading delivered twice stays one.
/// Readings without a seq (v1 devices) take the event id instead, which is stable for a
/// redelivered record. A time range `[a, b]` is the key range
/// `[sort_key_floor(a), sort_key_ceiling(b)]`.
pub fn sort_key(ts_ms: i64, seq: Option<u64>, event_id: &str) -> String {
    match seq {
        Some(seq) => format!("{ts_ms:013}#{seq:020}"),
        None => format!("{ts_ms:013}#id-{event_id}"),
    }
}

pub fn sort_key_floor(ts_ms: i64) -> String {
    format!("{ts_ms:013}")
}

pub fn sort_key_ceiling(ts_ms: i64) -> String {
    // '~' sorts after '#' and every digit.
    format!("{ts_ms:013}~")
}

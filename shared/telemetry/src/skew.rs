//! Clock skew: a device's clock is trusted only within a configured distance of the time
//! the hub received the message. Beyond it the reading is stored at the receive time and
//! flagged, never silently placed in the future or the distant past.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkewPolicy {
    pub threshold: Duration,
}

impl Default for SkewPolicy {
    fn default() -> Self {
        Self {
            threshold: Duration::minutes(5),
        }
    }
}

/// The time to store a reading at, and what was found out about the device clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub ts: DateTime<Utc>,
    /// `device_ts - received_at` in milliseconds: positive when the device runs ahead.
    pub skew_ms: i64,
    pub corrected: bool,
}

impl SkewPolicy {
    pub fn apply(&self, device_ts: DateTime<Utc>, received_at: DateTime<Utc>) -> Timing {
        let skew = device_ts - received_at;
        let corrected = skew.abs() > self.threshold;
        Timing {
            ts: if corrected { received_at } else { device_ts },
            skew_ms: skew.num_milliseconds(),
            corrected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn within_threshold_keeps_device_time() {
        let received = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let device = received - Duration::seconds(90);
        let t = SkewPolicy::default().apply(device, received);
        assert_eq!(
            t,
            Timing {
                ts: device,
                skew_ms: -90_000,
                corrected: false
            }
        );
    }

    #[test]
    fn beyond_threshold_uses_receive_time_either_way() {
        let received = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let policy = SkewPolicy {
            threshold: Duration::seconds(30),
        };
        let ahead = policy.apply(received + Duration::hours(2), received);
        assert!(ahead.corrected && ahead.ts == received && ahead.skew_ms == 7_200_000);
        let behind = policy.apply(received - Duration::days(400), received);
        assert!(behind.corrected && behind.ts == received && behind.skew_ms < 0);
    }
}

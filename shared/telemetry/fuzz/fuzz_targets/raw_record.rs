//! Fuzzes the whole path of one raw stream record: `unpack_raw`, then `payload::parse`,
//! then `normalize` with the default skew policy, then serializing the normalized event.
#![no_main]

use hub_events::DeviceContext;
use hub_telemetry::{normalize, payload, unpack_raw, SkewPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = match unpack_raw(data) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(!e.code().is_empty());
            return;
        }
    };
    assert!(!raw.device_id.is_empty() && raw.device_id.len() <= 128);
    let Ok(message) = payload::parse(&raw.payload) else {
        return;
    };
    let policy = SkewPolicy::default();
    let (event, timing) = normalize(&raw, &message, &policy, DeviceContext::default());
    // The stored time is the device's, or the receive time when the device clock is off.
    assert!((timing.ts - raw.received_at).abs() <= policy.threshold);
    assert_eq!(event.time, timing.ts);
    assert_eq!(event.subject, raw.device_id);
    assert_eq!(event.data.metrics, message.metrics);
    assert_eq!(event.data.units.len(), event.data.metrics.len());
    let bytes = serde_json::to_vec(&event);
    assert!(
        bytes.is_ok(),
        "normalized event does not serialize: {bytes:?}"
    );
});

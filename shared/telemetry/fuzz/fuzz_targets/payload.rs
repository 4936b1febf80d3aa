//! Fuzzes the device payload parser: whatever bytes arrive, `payload::parse` answers Ok or
//! a reason without panicking, and what it accepts holds the promises of `DeviceMessage`.
#![no_main]

use hub_telemetry::{
    units,
    payload::{self, MessageKind, MAX_METRICS, MAX_PAYLOAD_BYTES, MAX_STATUS_LEN},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let message = match payload::parse(data) {
        Ok(message) => message,
        Err(reason) => {
            // Every refusal has a stable, non-empty reason code.
            assert!(!reason.code().is_empty());
            return;
        }
    };
    assert!(data.len() <= MAX_PAYLOAD_BYTES);
    assert!(matches!(message.format_version, 1 | 2));
    assert!(message.metrics.len() <= MAX_METRICS);
    assert!(message.status.len() <= MAX_STATUS_LEN);
    if message.kind == MessageKind::Telemetry {
        assert!(!message.metrics.is_empty(), "telemetry without metrics");
    }
    for (name, &value) in &message.metrics {
        // "every value finite and in range"
        assert!(value.is_finite(), "{name} = {value}");
        // The normalized event's schema: propertyNames ^[a-z][a-z0-9_]*$
        assert!(
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "metric name {name:?} is not snake_case"
        );
        // Canonical: canonicalizing a canonical name changes nothing...
        assert_eq!(
            units::canonical_name(name).as_deref(),
            Ok(name.as_str()),
            "metric name {name:?} is not a fixed point of canonical_name"
        );
        // ...and a canonical name is already in its canonical unit (no conversion) and
        // within that unit's range, so normalizing it again returns it unchanged.
        assert_eq!(
            units::normalize(name, value),
            Ok((name.clone(), value)),
            "metric {name} = {value} does not normalize to itself"
        );
    }
});

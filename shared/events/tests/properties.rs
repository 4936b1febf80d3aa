//! Whatever the producer puts in a normalized event, the JSON written validates against
//! the published schema and parses back to the same event.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
mod common;

use hub_events::{DeviceContext, Envelope, NormalizedTelemetry};
use proptest::prelude::*;
use serde_json::Value;

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000_000).prop_map(|ms| Utc.timestamp_millis_opt(ms).unwrap())
}

fn normalized() -> impl Strategy<Value = NormalizedTelemetry> {
    (
        "[a-z0-9-]{1,32}",
        proptest::option::of(any::<u64>()),
        time(),
        time(),
        proptest::collection::btree_map("[a-z][a-z0-9_]{0,20}", -1e12f64..1e12, 0..8),
        any::<bool>(),
        proptest::option::of("[a-z-]{1,12}"),
    )
        .prop_map(
            |(device_id, seq, device_ts, received_at, metrics, corrected, device_type)| {
                let units: BTreeMap<String, String> =
                    metrics.keys().map(|k| (k.clone(), "unit".into())).collect();
                NormalizedTelemetry {
                    device_id,
                    seq,
                    ts: if corrected { received_at } else { device_ts },
                    device_ts,
                    received_at,
                    clock_skew_ms: (device_ts - received_at).num_milliseconds(),
                    clock_skew_corrected: corrected,
                    metrics,
                    units,
                    status: "OK".into(),
                    device: DeviceContext {
                        device_type,
                        ..Default::default()
                    },
                }
            },
        )
}

proptest! {
    #[test]
    fn normalized_events_match_their_schema(data in normalized(), simulated in any::<bool>()) {
        let validator = common::validator(NormalizedTelemetry::TYPE);
        let subject = data.device_id.clone();
        let event = Envelope::new("normalizer", subject, data.ts, data).simulated(simulated);
        let bytes = event.to_vec();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert!(validator.is_valid(&value), "{}", value);
        prop_assert_eq!(Envelope::<NormalizedTelemetry>::from_slice(&bytes).unwrap(), event);
    }
}

#[test]
fn severity_and_state_names_are_their_json_names() {
    use hub_events::{AlertState, Severity};
    for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
        assert_eq!(serde_json::to_value(severity).unwrap(), severity.as_str());
        assert_eq!(Severity::from_name(severity.as_str()), Some(severity));
    }
    for state in [
        AlertState::Open,
        AlertState::Acknowledged,
        AlertState::Resolved,
    ] {
        assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        assert_eq!(AlertState::from_name(state.as_str()), Some(state));
    }
    assert_eq!(Severity::from_name("loud"), None);
}

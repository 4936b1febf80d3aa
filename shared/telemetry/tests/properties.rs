//! Properties of payload validation that hold for every input, not just the examples.

use chrono::{TimeZone, Utc};
use hub_telemetry::{payload, units, SkewPolicy};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn metric_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,15}".prop_filter("canonical already", |n| {
        units::canonical_name(n).as_deref() == Ok(n.as_str())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever bytes arrive, parsing answers Ok or a reason; it never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Err(reason) = payload::parse(&bytes) {
            prop_assert!(!reason.code().is_empty());
        }
    }

    /// Arbitrary JSON values (any shape, any types) are accepted or refused with a reason.
    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let _ = payload::parse(value.to_string().as_bytes());
    }

    /// A valid v2 message keeps seq, time, status and every metric value; unknown
    /// top-level fields do not matter.
    #[test]
    fn valid_v2_round_trips(
        seq in any::<u64>(),
        ms in 0i64..4_102_444_800_000,
        values in proptest::collection::btree_map(metric_name(), -1e6f64..1e6, 1..10),
        extra in proptest::option::of("[a-z]{1,8}"),
    ) {
        let ts = Utc.timestamp_millis_opt(ms).unwrap();
        let known: Vec<String> = values.keys().filter(|k| !units::unit_of(k).is_empty()).cloned().collect();
        // Known metrics have ranges; keep this property to metrics without one.
        let values: std::collections::BTreeMap<String, f64> =
            values.into_iter().filter(|(k, _)| !known.contains(k)).collect();
        prop_assume!(!values.is_empty());
        let mut message = json!({
            "v": 2, "seq": seq, "msg_type": "telemetry",
            "ts": ts.to_rfc3339(), "metrics": values, "status": "OK",
        });
        if let Some(extra) = extra {
            message[format!("x_{extra}")] = json!({"anything": [1, 2]});
        }
        let parsed = payload::parse(message.to_string().as_bytes()).unwrap();
        prop_assert_eq!(parsed.seq, Some(seq));
        prop_assert_eq!(parsed.device_ts, ts);
        prop_assert_eq!(parsed.metrics, values);
    }

    /// The bare v1 form carries the same reading as the equivalent v2 message.
    #[test]
    fn v1_and_v2_agree(temperature in -50f64..150.0, voltage in 0f64..500.0) {
        let ts = "2026-11-23T10:00:00Z";
        let v1 = payload::parse(json!({"ts": ts, "temperature": temperature, "voltage": voltage, "status": "OK"}).to_string().as_bytes()).unwrap();
        let v2 = payload::parse(json!({"v": 2, "ts": ts, "metrics": {"temperature": temperature, "voltage": voltage}, "status": "OK"}).to_string().as_bytes()).unwrap();
        prop_assert_eq!(v1.metrics, v2.metrics);
        prop_assert_eq!(v1.device_ts, v2.device_ts);
    }

    /// Any device time, however far in the future or past, ends within the threshold of
    /// the receive time; times inside the threshold are kept as the device sent them.
    #[test]
    fn stored_time_is_never_far_from_receipt(offset_s in -10_000_000_000i64..10_000_000_000, threshold_s in 1i64..86_400) {
        let received = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let Some(device) = received.checked_add_signed(chrono::Duration::seconds(offset_s)) else { return Ok(()) };
        let policy = SkewPolicy { threshold: chrono::Duration::seconds(threshold_s) };
        let timing = policy.apply(device, received);
        prop_assert!((timing.ts - received).num_seconds().abs() <= threshold_s);
        prop_assert_eq!(timing.corrected, offset_s.abs() > threshold_s);
        if !timing.corrected {
            prop_assert_eq!(timing.ts, device);
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
        Just(Value::String("2026-11-23T10:00:00Z".into())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("v".to_owned()),
                    Just("ts".to_owned()),
                    Just("seq".to_owned()),
                    Just("metrics".to_owned()),
                    Just("msg_type".to_owned()),
                    "[a-zA-Z_]{1,10}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

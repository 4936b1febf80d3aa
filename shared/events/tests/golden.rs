//! Golden tests: each checked-in event file parses into its type, serialises back to the
//! same JSON, and validates against the type's schema. A change to the wire format fails
//! here before it reaches a consumer.

mod common;

use common::validator;
use hub_events::{
    AlertRaised, AnomalyCleared, AnomalyDetected, Envelope, EventData, NormalizedTelemetry,
    RawTelemetry, RolloutEvent,
};
use serde_json::Value;

fn assert_valid(name: &str, instance: &Value) {
    let validator = validator(name);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}");
}

fn golden<T: EventData + PartialEq + std::fmt::Debug>(file: &str, schema: &str) -> Envelope<T> {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("golden file");
    let expected: Value = serde_json::from_str(&text).unwrap();

    let event = Envelope::<T>::from_slice(text.as_bytes()).expect("golden parses");
    let written: Value = serde_json::from_slice(&event.to_vec()).unwrap();
    assert_eq!(written, expected, "{file} does not round-trip");
    assert_valid(schema, &written);
    event
}

#[test]
fn raw_telemetry_golden() {
    let event: Envelope<RawTelemetry> = golden("iot.telemetry.raw.v1.json", RawTelemetry::TYPE);
    assert_eq!(event.subject, "sensor-0001");
}

#[test]
fn normalized_telemetry_golden() {
    let event: Envelope<NormalizedTelemetry> = golden(
        "iot.telemetry.normalized.v1.json",
        NormalizedTelemetry::TYPE,
    );
    assert_eq!(event.data.metrics["temperature"], 24.1);
    assert!(event.simulated);
}

#[test]
fn anomaly_detected_golden() {
    golden::<AnomalyDetected>("iot.anomaly.detected.v1.json", AnomalyDetected::TYPE);
}

#[test]
fn model_detection_golden_names_its_model_and_baseline() {
    let event: Envelope<AnomalyDetected> = golden(
        "iot.anomaly.detected.v1.z_score.json",
        AnomalyDetected::TYPE,
    );
    assert_eq!(event.data.model, Some(hub_events::AnomalyModel::Seasonal));
    assert_eq!(event.data.baseline, Some(18.4));
}

#[test]
fn anomaly_cleared_golden() {
    golden::<AnomalyCleared>("iot.anomaly.cleared.v1.json", AnomalyCleared::TYPE);
}

#[test]
fn alert_raised_golden() {
    golden::<AlertRaised>("iot.alert.raised.v1.json", AlertRaised::TYPE);
}

#[test]
fn rollout_golden() {
    let event: Envelope<RolloutEvent> = golden(
        "iot.firmware.rollout.aborted.v1.json",
        RolloutEvent::TYPE_PREFIX,
    );
    assert_eq!(event.event_type, "iot.firmware.rollout.aborted.v1");
}

#[test]
fn wrong_type_is_refused() {
    let path = format!(
        "{}/tests/golden/iot.anomaly.detected.v1.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let err = Envelope::<AlertRaised>::from_slice(text.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("not valid JSON") || err.to_string().contains("type"));
}

#[test]
fn version_must_match_type_suffix() {
    let path = format!(
        "{}/tests/golden/iot.alert.raised.v1.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["version"] = 2.into();
    let err = Envelope::<AlertRaised>::from_slice(value.to_string().as_bytes()).unwrap_err();
    assert!(matches!(
        err,
        hub_events::EnvelopeError::VersionMismatch { .. }
    ));
    // The schema refuses it too.
    assert!(!validator(AlertRaised::TYPE).is_valid(&value));
}

#[test]
fn schema_rejects_non_finite_metric_and_bad_names() {
    let path = format!(
        "{}/tests/golden/iot.telemetry.normalized.v1.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["data"]["metrics"]["Bad-Name"] = 1.0.into();
    assert!(!validator(NormalizedTelemetry::TYPE).is_valid(&value));
}

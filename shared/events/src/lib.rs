//! The one envelope every event on a stream or topic travels in, and the versioned event
//! types that go inside it.
//!
//! The wire format is the contract with consumers (ML, other domains): each type has a
//! JSON Schema under `schemas/` and golden files under `tests/golden/`, and the tests
//! prove that what this crate writes is what the schema promises.

mod envelope;
mod types;

pub use envelope::{Envelope, EnvelopeError, EventData};
pub use types::*;

/// The JSON Schemas, by event type, for consumers that validate what they read.
pub const SCHEMAS: &[(&str, &str)] = &[
    ("envelope", include_str!("../schemas/envelope.schema.json")),
    (
        RawTelemetry::TYPE,
        include_str!("../schemas/iot.telemetry.raw.v1.schema.json"),
    ),
    (
        NormalizedTelemetry::TYPE,
        include_str!("../schemas/iot.telemetry.normalized.v1.schema.json"),
    ),
    (
        AnomalyDetected::TYPE,
        include_str!("../schemas/iot.anomaly.detected.v1.schema.json"),
    ),
    (
        AnomalyCleared::TYPE,
        include_str!("../schemas/iot.anomaly.cleared.v1.schema.json"),
    ),
    (
        AlertRaised::TYPE,
        include_str!("../schemas/iot.alert.raised.v1.schema.json"),
    ),
    (
        RolloutEvent::TYPE_PREFIX,
        include_str!("../schemas/iot.firmware.rollout.v1.schema.json"),
    ),
];

//! Device telemetry as the hub understands it. Pure logic over plain data, so every rule
//! about what is valid, how it is normalized and how it is counted is tested without AWS.

pub mod accounting;
pub mod hot_store;
pub mod payload;
pub mod skew;
pub mod units;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use hub_events::{DeviceContext, Envelope, NormalizedTelemetry, RawTelemetry};

pub use payload::{DeviceMessage, MessageKind, RejectReason};
pub use skew::{SkewPolicy, Timing};

/// Why a raw stream record could not even be read as a raw telemetry event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RawRecordError {
    #[error("record is not an iot.telemetry.raw.v1 event: {0}")]
    NotRawEvent(String),
    #[error("payload is not base64: {0}")]
    PayloadNotBase64(String),
    #[error("topic {0:?} does not name a device")]
    NoDevice(String),
    #[error("received_at_ms {0} is not a time")]
    BadReceiveTime(i64),
}

impl RawRecordError {
    pub fn code(&self) -> &'static str {
        match self {
            RawRecordError::NotRawEvent(_) => "not_raw_event",
            RawRecordError::PayloadNotBase64(_) => "payload_not_base64",
            RawRecordError::NoDevice(_) => "no_device",
            RawRecordError::BadReceiveTime(_) => "bad_receive_time",
        }
    }
}

/// A raw record unpacked: who sent what, and when the hub got it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub device_id: String,
    pub payload: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub simulated: bool,
}

/// Reads a record of the raw stream.
pub fn unpack_raw(record: &[u8]) -> Result<RawMessage, RawRecordError> {
    let event = Envelope::<RawTelemetry>::from_slice(record)
        .map_err(|e| RawRecordError::NotRawEvent(e.to_string()))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&event.data.payload)
        .map_err(|e| RawRecordError::PayloadNotBase64(e.to_string()))?;
    // The subject is set by the rule from the topic; a device can only publish on its own.
    let device_id = event.subject;
    if device_id.is_empty() || device_id.len() > 128 {
        return Err(RawRecordError::NoDevice(event.data.topic));
    }
    let received_at = Utc
        .timestamp_millis_opt(event.data.received_at_ms)
        .single()
        .ok_or(RawRecordError::BadReceiveTime(event.data.received_at_ms))?;
    Ok(RawMessage {
        device_id,
        payload,
        received_at,
        simulated: event.simulated,
    })
}

/// Builds the normalized event for a validated telemetry message.
pub fn normalize(
    raw: &RawMessage,
    message: &DeviceMessage,
    policy: &SkewPolicy,
    device: DeviceContext,
) -> (Envelope<NormalizedTelemetry>, Timing) {
    let timing = policy.apply(message.device_ts, raw.received_at);
    let units = message
        .metrics
        .keys()
        .map(|name| (name.clone(), units::unit_of(name).to_owned()))
        .collect();
    let data = NormalizedTelemetry {
        device_id: raw.device_id.clone(),
        seq: message.seq,
        ts: timing.ts,
        device_ts: message.device_ts,
        received_at: raw.received_at,
        clock_skew_ms: timing.skew_ms,
        clock_skew_corrected: timing.corrected,
        metrics: message.metrics.clone(),
        units,
        status: message.status.clone(),
        device,
    };
    let envelope = Envelope::new("normalizer", raw.device_id.clone(), timing.ts, data)
        .simulated(raw.simulated || message.simulated);
    (envelope, timing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW_GOLDEN: &[u8] = include_bytes!("../../events/tests/golden/iot.telemetry.raw.v1.json");

    #[test]
    fn golden_raw_record_unpacks_and_normalizes() {
        let raw = unpack_raw(RAW_GOLDEN).unwrap();
        assert_eq!(raw.device_id, "sensor-0001");
        let message = payload::parse(&raw.payload).unwrap();
        let context = DeviceContext {
            device_type: Some("env-sensor".into()),
            ..Default::default()
        };
        let (event, timing) = normalize(&raw, &message, &SkewPolicy::default(), context);
        assert!(!timing.corrected);
        assert_eq!(event.event_type, "iot.telemetry.normalized.v1");
        assert_eq!(event.subject, "sensor-0001");
        assert_eq!(event.data.seq, Some(1042));
        assert_eq!(event.data.units["temperature"], "celsius");
        assert_eq!(event.data.clock_skew_ms, -250);
        assert_eq!(event.data.device.device_type.as_deref(), Some("env-sensor"));
    }

    #[test]
    fn broken_raw_records_are_named() {
        assert_eq!(unpack_raw(b"nope").unwrap_err().code(), "not_raw_event");
        let mut value: serde_json::Value = serde_json::from_slice(RAW_GOLDEN).unwrap();
        value["data"]["payload"] = "***".into();
        assert_eq!(
            unpack_raw(value.to_string().as_bytes()).unwrap_err().code(),
            "payload_not_base64"
        );
    }
}

//! Device payloads as they arrive: the v2 envelope
//! `{ "v": 2, "seq", "msg_type", "ts", "metrics": {..}, "status" }` and the bare v1 form
//! `{ "ts", "temperature", "voltage", "status" }` of older devices.
//!
//! Parsing never panics and never guesses: anything it cannot read exactly is a
//! [`RejectReason`] that names the field, and the record goes to the dead letters.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::units::{self, MetricError};

/// The largest payload accepted (AWS IoT Core's own limit is 128 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
/// More metrics than this in one message is a misbehaving device.
pub const MAX_METRICS: usize = 64;
pub const MAX_STATUS_LEN: usize = 64;

/// What kind of message a device sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Telemetry,
    /// Liveness only: no metrics, nothing to store.
    Heartbeat,
}

/// A validated device message, before normalization of time and enrichment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMessage {
    pub format_version: u8,
    pub seq: Option<u64>,
    pub kind: MessageKind,
    pub device_ts: DateTime<Utc>,
    /// Canonical metric name -> value in canonical unit; every value finite and in range.
    pub metrics: BTreeMap<String, f64>,
    pub status: String,
    /// The device marked itself as simulated.
    pub simulated: bool,
}

/// Why a payload was refused. `code()` is the stable reason stored with the dead letter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    #[error("payload of {0} bytes exceeds {MAX_PAYLOAD_BYTES}")]
    TooLarge(usize),
    #[error("payload is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("payload is JSON but not an object")]
    NotAnObject,
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("format version {0} is not supported (1 or 2)")]
    UnsupportedVersion(i64),
    #[error("msg_type {0:?} is not telemetry or heartbeat")]
    UnknownMessageType(String),
    #[error("field `ts` is not an RFC 3339 time: {0:?}")]
    BadTimestamp(String),
    #[error("telemetry carries no metrics")]
    NoMetrics,
    #[error("{0} metrics exceed the limit of {MAX_METRICS}")]
    TooManyMetrics(usize),
    #[error("fields `{first}` and `{second}` are both metric `{canonical}`")]
    AmbiguousMetric {
        first: String,
        second: String,
        canonical: String,
    },
    #[error(transparent)]
    Metric(#[from] MetricError),
}

impl RejectReason {
    /// Short, stable reason code for dead letters and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::TooLarge(_) => "too_large",
            RejectReason::MalformedJson(_) => "malformed_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::MissingField(_) => "missing_field",
            RejectReason::WrongType { .. } => "wrong_type",
            RejectReason::UnsupportedVersion(_) => "unsupported_version",
            RejectReason::UnknownMessageType(_) => "unknown_msg_type",
            RejectReason::BadTimestamp(_) => "bad_timestamp",
            RejectReason::NoMetrics => "no_metrics",
            RejectReason::TooManyMetrics(_) => "too_many_metrics",
            RejectReason::AmbiguousMetric { .. } => "ambiguous_metric",
            RejectReason::Metric(e) => e.code(),
        }
    }
}

/// Fields of the bare v1 form that are not metrics.
const V1_RESERVED: &[&str] = &["ts", "status", "seq", "simulated", "v", "msg_type"];

/// Parses and validates one device payload.
pub fn parse(bytes: &[u8]) -> Result<DeviceMessage, RejectReason> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(RejectReason::TooLarge(bytes.len()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| RejectReason::MalformedJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(RejectReason::NotAnObject);
    };
    let version = match object.get("v") {
        None => 1,
        Some(v) => match v.as_i64() {
            Some(n @ (1 | 2)) => n,
            Some(n) => return Err(RejectReason::UnsupportedVersion(n)),
            None => return Err(wrong_type("v", "an integer")),
        },
    };
    let kind = match object.get("msg_type") {
        None => MessageKind::Telemetry,
        Some(Value::String(t)) if t == "telemetry" => MessageKind::Telemetry,
        Some(Value::String(t)) if t == "heartbeat" => MessageKind::Heartbeat,
        Some(Value::String(t)) => return Err(RejectReason::UnknownMessageType(truncate(t))),
        Some(_) => return Err(wrong_type("msg_type", "a string")),
    };
    let device_ts = timestamp(&object)?;
    let seq = match object.get("seq") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| wrong_type("seq", "a non-negative integer"))?,
        ),
    };
    let status = match object.get("status") {
        None | Some(Value::Null) => "OK".to_owned(),
        Some(Value::String(s)) if s.len() <= MAX_STATUS_LEN => s.clone(),
        Some(Value::String(_)) => return Err(wrong_type("status", "at most 64 bytes")),
        Some(_) => return Err(wrong_type("status", "a string")),
    };
    let simulated = match object.get("simulated") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(wrong_type("simulated", "a boolean")),
    };

    let raw_metrics: Vec<(&String, &Value)> = if version == 2 {
        match object.get("metrics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m.iter().collect(),
            Some(_) => return Err(wrong_type("metrics", "an object")),
        }
    } else {
        object
            .iter()
            .filter(|(k, _)| !V1_RESERVED.contains(&k.as_str()))
            .collect()
    };
    if raw_metrics.len() > MAX_METRICS {
        return Err(RejectReason::TooManyMetrics(raw_metrics.len()));
    }
    let mut metrics = BTreeMap::new();
    // Which device field each canonical metric came from: two fields naming the same
    // quantity (`temp` and `temp_f`) are refused rather than one silently winning.
    let mut sources: BTreeMap<String, &String> = BTreeMap::new();
    for (name, value) in raw_metrics {
        let value = match value {
            Value::Number(n) => n.as_f64().ok_or_else(|| wrong_type(name, "a number"))?,
            _ => return Err(wrong_type(name, "a number")),
        };
        let (canonical, value) = units::normalize(name, value)?;
        if let Some(first) = sources.insert(canonical.clone(), name) {
            return Err(RejectReason::AmbiguousMetric {
                first: truncate(first),
                second: truncate(name),
                canonical,
            });
        }
        metrics.insert(canonical, value);
    }
    if kind == MessageKind::Telemetry && metrics.is_empty() {
        return Err(RejectReason::NoMetrics);
    }
    Ok(DeviceMessage {
        format_version: version as u8,
        seq,
        kind,
        device_ts,
        metrics,
        status,
        simulated,
    })
}

fn timestamp(object: &Map<String, Value>) -> Result<DateTime<Utc>, RejectReason> {
    match object.get("ts") {
        None | Some(Value::Null) => Err(RejectReason::MissingField("ts")),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| RejectReason::BadTimestamp(truncate(s))),
        Some(_) => Err(wrong_type("ts", "an RFC 3339 string")),
    }
}

fn wrong_type(field: &str, expected: &'static str) -> RejectReason {
    RejectReason::WrongType {
        field: truncate(field),
        expected,
    }
}

/// Keeps attacker-controlled text in error messages short.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_envelope() {
        let m = parse(
            br#"{"v":2,"seq":1042,"msg_type":"telemetry","ts":"2026-11-23T10:00:00Z",
                 "metrics":{"temperature":24.1,"voltage":3.7},"status":"OK"}"#,
        )
        .unwrap();
        assert_eq!(m.format_version, 2);
        assert_eq!(m.seq, Some(1042));
        assert_eq!(m.kind, MessageKind::Telemetry);
        assert_eq!(m.metrics["temperature"], 24.1);
        assert_eq!(m.metrics["voltage"], 3.7);
        assert_eq!(m.device_ts.to_rfc3339(), "2026-11-23T10:00:00+00:00");
    }

    #[test]
    fn bare_v1_form() {
        let m = parse(
            br#"{"ts":"2026-11-23T10:00:00+02:00","temperature":21,"voltage":3.3,"status":"WARN"}"#,
        )
        .unwrap();
        assert_eq!(m.format_version, 1);
        assert_eq!(m.seq, None);
        assert_eq!(m.status, "WARN");
        assert_eq!(m.metrics.len(), 2);
        assert_eq!(m.device_ts.to_rfc3339(), "2026-11-23T08:00:00+00:00");
    }

    #[test]
    fn heartbeat_needs_no_metrics() {
        let m = parse(br#"{"v":2,"seq":5,"msg_type":"heartbeat","ts":"2026-11-23T10:00:00Z"}"#)
            .unwrap();
        assert_eq!(m.kind, MessageKind::Heartbeat);
        assert!(m.metrics.is_empty());
    }

    #[test]
    fn unknown_top_level_fields_are_ignored_in_v2() {
        let m = parse(
            br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"humidity":40},"firmware":"1.2"}"#,
        )
        .unwrap();
        assert_eq!(m.metrics.keys().collect::<Vec<_>>(), ["humidity"]);
    }

    #[test]
    fn rejections_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "malformed_json"),
            (b"[1,2]", "not_an_object"),
            (br#"{"v":2,"metrics":{"temperature":1}}"#, "missing_field"),
            (br#"{"v":2,"ts":12,"metrics":{"temperature":1}}"#, "wrong_type"),
            (br#"{"v":2,"ts":"yesterday","metrics":{"temperature":1}}"#, "bad_timestamp"),
            (br#"{"v":3,"ts":"2026-11-23T10:00:00Z"}"#, "unsupported_version"),
            (br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{}}"#, "no_metrics"),
            (br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"temperature":"hot"}}"#, "wrong_type"),
            (br#"{"v":2,"ts":"2026-11-23T10:00:00Z","seq":-1,"metrics":{"temperature":1}}"#, "wrong_type"),
            (br#"{"v":2,"ts":"2026-11-23T10:00:00Z","msg_type":"x","metrics":{"temperature":1}}"#, "unknown_msg_type"),
            (br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"temperature":1e308}}"#, "out_of_range"),
            (br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"bad name!":1}}"#, "bad_metric_name"),
        ];
        for (payload, code) in cases {
            let err = parse(payload).unwrap_err();
            assert_eq!(
                err.code(),
                *code,
                "{} -> {err}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn huge_payload_is_refused_before_parsing() {
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            parse(&big).unwrap_err(),
            RejectReason::TooLarge(MAX_PAYLOAD_BYTES + 1)
        );
    }

    #[test]
    fn too_many_metrics() {
        let metrics: Vec<String> = (0..65).map(|i| format!("\"m{i}\":1")).collect();
        let payload = format!(
            r#"{{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{{{}}}}}"#,
            metrics.join(",")
        );
        assert_eq!(
            parse(payload.as_bytes()).unwrap_err().code(),
            "too_many_metrics"
        );
    }

    #[test]
    fn two_fields_for_one_metric_are_refused() {
        let err =
            parse(br#"{"ts":"2026-11-23T10:00:00Z","temperature":20,"temp_f":212}"#).unwrap_err();
        assert_eq!(err.code(), "ambiguous_metric");
        let err = parse(br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"temp":20,"TEMP":30}}"#)
            .unwrap_err();
        assert_eq!(err.code(), "ambiguous_metric");
    }

    #[test]
    fn a_name_that_grows_past_the_limit_is_refused() {
        // 64 bytes in, 65 after the underscore at the case change.
        let payload = format!(r#"{{"ts":"2026-11-23T10:00:00Z","{}A":1}}"#, "a".repeat(63));
        assert_eq!(
            parse(payload.as_bytes()).unwrap_err().code(),
            "bad_metric_name"
        );
    }

    #[test]
    fn vanishingly_small_values_are_refused_and_zero_is_not() {
        let tiny = br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"temperature":1e-200}}"#;
        assert_eq!(parse(tiny).unwrap_err().code(), "out_of_range");
        let zero =
            br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"temperature":0.0,"current":-0.0}}"#;
        assert_eq!(parse(zero).unwrap().metrics["temperature"], 0.0);
    }
}

//! Versioned event payloads. Field names are the wire format: rename nothing without a
//! new version.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EventData;

/// How a raw message reached the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestChannel {
    Mqtt,
    Http,
}

/// `iot.telemetry.raw.v1`: one message exactly as a device sent it, before any validation.
/// Produced by the IoT topic rule (MQTT) and by the HTTP ingest function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// The original bytes, base64, so that malformed input survives to the dead-letter store.
    pub payload: String,
    /// MQTT topic the device published on (`devices/{id}/telemetry`), or the HTTP path.
    pub topic: String,
    /// MQTT client id, or the API key id for HTTP ingest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When the hub received the message, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    pub channel: IngestChannel,
}

impl RawTelemetry {
    pub const TYPE: &'static str = "iot.telemetry.raw.v1";
}

impl EventData for RawTelemetry {
    fn event_type(&self) -> &'static str {
        Self::TYPE
    }
}

/// Registry attributes attached to telemetry during enrichment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
}

/// `iot.telemetry.normalized.v1`: a validated, deduplicated, enriched reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizedTelemetry {
    pub device_id: String,
    /// Device sequence number; absent for v1 (bare) payloads, which carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Measurement time used for storage: the device's time, or the receive time when
    /// the device clock was too far off.
    pub ts: DateTime<Utc>,
    /// The time the device claimed.
    pub device_ts: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// `device_ts - received_at` in milliseconds.
    pub clock_skew_ms: i64,
    /// True when the skew passed the configured threshold and `ts` was corrected.
    pub clock_skew_corrected: bool,
    /// Metric name (snake_case, canonical unit) to value; always finite.
    pub metrics: BTreeMap<String, f64>,
    /// Canonical unit per metric, e.g. `temperature` -> `celsius`.
    pub units: BTreeMap<String, String>,
    pub status: String,
    pub device: DeviceContext,
}

impl NormalizedTelemetry {
    pub const TYPE: &'static str = "iot.telemetry.normalized.v1";
}

impl EventData for NormalizedTelemetry {
    fn event_type(&self) -> &'static str {
        Self::TYPE
    }
}

/// What made the detector fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionKind {
    Threshold,
    ZScore,
}

/// Which view of a series judged a `z_score` reading anomalous: its forgetting level, its
/// hour-of-day pattern, or a level shift found by the change-point test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyModel {
    Level,
    Seasonal,
    Shift,
}

/// A time window `[start, end)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `iot.anomaly.detected.v1`: one anomalous reading inside an episode, for alerting and for
/// ML consumers (which get the value, the score or rule, and the episode's window). Every
/// detection of one episode carries the window the episode began in, which is what makes
/// them one alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyDetected {
    pub device_id: String,
    /// From the registry, so alert subscribers can filter by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    pub metric: String,
    pub value: f64,
    pub kind: DetectionKind,
    /// z-score for `z_score` detections: standard deviations from `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The model that judged a `z_score` detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<AnomalyModel>,
    /// What that model expected the reading to be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Rule that fired, for threshold detections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Human-readable rule, e.g. `temperature > 80`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub severity: Severity,
    pub ts: DateTime<Utc>,
    pub window: Window,
}

impl AnomalyDetected {
    pub const TYPE: &'static str = "iot.anomaly.detected.v1";
}

impl EventData for AnomalyDetected {
    fn event_type(&self) -> &'static str {
        Self::TYPE
    }
}

/// `iot.anomaly.cleared.v1`: an episode of anomalous readings has ended (enough normal
/// readings in a row); alerts of the episode resolve themselves on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyCleared {
    pub device_id: String,
    pub metric: String,
    pub kind: DetectionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Time of the reading that cleared the episode.
    pub ts: DateTime<Utc>,
    /// The window the episode began in, as its detections carried it.
    pub window: Window,
}

impl AnomalyCleared {
    pub const TYPE: &'static str = "iot.anomaly.cleared.v1";
}

impl EventData for AnomalyCleared {
    fn event_type(&self) -> &'static str {
        Self::TYPE
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl Severity {
    /// The wire name, as in JSON (`info`, `warning`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

impl AlertState {
    /// The wire name, as in JSON (`open`, `acknowledged`, `resolved`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            AlertState::Open,
            AlertState::Acknowledged,
            AlertState::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// `iot.alert.raised.v1`: an alert as subscribers see it, once per episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRaised {
    pub alert_id: String,
    pub device_id: String,
    pub rule_id: String,
    pub severity: Severity,
    pub state: AlertState,
    /// How many detections this alert absorbed (deduplicated triggers included).
    pub count: u64,
    pub raised_at: DateTime<Utc>,
    pub window: Window,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    pub summary: String,
}

impl AlertRaised {
    pub const TYPE: &'static str = "iot.alert.raised.v1";
}

impl EventData for AlertRaised {
    fn event_type(&self) -> &'static str {
        Self::TYPE
    }
}

/// The step of a rollout an `iot.firmware.rollout.*.v1` event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutEventKind {
    Started,
    Progress,
    Completed,
    Aborted,
    Cancelled,
    RolledBack,
}

/// Device counts per execution state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutCounts {
    pub queued: u64,
    pub in_progress: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub cancelled: u64,
}

/// `iot.firmware.rollout.{started,progress,completed,aborted,cancelled,rolled_back}.v1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutEvent {
    pub kind: RolloutEventKind,
    pub rollout_id: String,
    pub firmware_version: String,
    /// Thing group the rollout targets.
    pub target: String,
    pub counts: RolloutCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RolloutEvent {
    pub const TYPE_PREFIX: &'static str = "iot.firmware.rollout";
}

impl EventData for RolloutEvent {
    fn event_type(&self) -> &'static str {
        match self.kind {
            RolloutEventKind::Started => "iot.firmware.rollout.started.v1",
            RolloutEventKind::Progress => "iot.firmware.rollout.progress.v1",
            RolloutEventKind::Completed => "iot.firmware.rollout.completed.v1",
            RolloutEventKind::Aborted => "iot.firmware.rollout.aborted.v1",
            RolloutEventKind::Cancelled => "iot.firmware.rollout.cancelled.v1",
            RolloutEventKind::RolledBack => "iot.firmware.rollout.rolled_back.v1",
        }
    }
}

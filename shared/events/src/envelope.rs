use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A payload type that can travel in an [`Envelope`].
pub trait EventData: Serialize + DeserializeOwned {
    /// The versioned type name, e.g. `iot.telemetry.normalized.v1`.
    fn event_type(&self) -> &'static str;
    /// Schema version; always the number after the type's final `.v`.
    const VERSION: u32 = 1;
}

/// CloudEvents-like envelope: `{ id, type, version, time, source, subject, simulated, data }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// Unique per event; consumers deduplicate on it.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    /// When the event happened (for telemetry: the measurement time after skew correction).
    pub time: DateTime<Utc>,
    /// The component that produced the event, e.g. `iot-core/telemetry-rule`, `normalizer`.
    pub source: String,
    /// What the event is about; for device events, the device id.
    pub subject: String,
    /// True for data produced by the device simulator, so it never pollutes real analytics.
    #[serde(default)]
    pub simulated: bool,
    pub data: T,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event is not valid JSON for its type: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event type is {found:?}, expected {expected:?}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("event version {found} does not match its type {event_type:?}")]
    VersionMismatch { event_type: String, found: u32 },
}

impl<T: EventData> Envelope<T> {
    /// Wraps `data` with a fresh id and the type and version that belong to it.
    pub fn new(
        source: impl Into<String>,
        subject: impl Into<String>,
        time: DateTime<Utc>,
        data: T,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: data.event_type().to_owned(),
            version: T::VERSION,
            time,
            source: source.into(),
            subject: subject.into(),
            simulated: false,
            data,
        }
    }

    pub fn simulated(mut self, simulated: bool) -> Self {
        self.simulated = simulated;
        self
    }

    /// Parses an envelope and checks that its type and version match what `data` holds.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(bytes)?;
        let expected = envelope.data.event_type();
        if envelope.event_type != expected {
            return Err(EnvelopeError::WrongType {
                expected,
                found: envelope.event_type,
            });
        }
        if !envelope
            .event_type
            .ends_with(&format!(".v{}", envelope.version))
        {
            return Err(EnvelopeError::VersionMismatch {
                event_type: envelope.event_type,
                found: envelope.version,
            });
        }
        Ok(envelope)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        // Serialising plain data structs with string keys cannot fail.
        serde_json::to_vec(self).expect("event serialises to JSON")
    }
}

//! Presence: a device's row gets `connectivity` and `last_seen` from IoT Core's lifecycle
//! events, newer events only.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::{ConnectivityStore, FleetError};

/// An AWS IoT lifecycle (presence) event, as the rule passes it on (`SELECT *`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEvent {
    pub client_id: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub event_type: String,
    #[serde(default)]
    pub session_identifier: Option<String>,
    #[serde(default)]
    pub principal_identifier: Option<String>,
    #[serde(default)]
    pub disconnect_reason: Option<String>,
    /// Increases with every connection of the same client id.
    #[serde(default)]
    pub version_number: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectivity {
    Connected,
    Disconnected,
}

impl Connectivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Connectivity::Connected => "connected",
            Connectivity::Disconnected => "disconnected",
        }
    }
}

/// What one presence event says about a device.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceChange {
    pub device_id: String,
    pub connectivity: Connectivity,
    pub at: DateTime<Utc>,
    /// (timestamp ms, version): the order in which changes apply.
    pub order: (i64, i64),
    pub disconnect_reason: Option<String>,
}

impl PresenceChange {
    pub fn from_event(event: &PresenceEvent) -> Result<Self, FleetError> {
        let connectivity = match event.event_type.as_str() {
            "connected" => Connectivity::Connected,
            "disconnected" => Connectivity::Disconnected,
            other => return Err(FleetError::NotPresence(format!("eventType {other:?}"))),
        };
        let at = Utc
            .timestamp_millis_opt(event.timestamp)
            .single()
            .ok_or_else(|| FleetError::NotPresence(format!("timestamp {}", event.timestamp)))?;
        if event.client_id.is_empty() || event.client_id.len() > 128 {
            return Err(FleetError::NotPresence("clientId".into()));
        }
        Ok(Self {
            device_id: event.client_id.clone(),
            connectivity,
            at,
            order: (event.timestamp, event.version_number),
            disconnect_reason: event.disconnect_reason.clone(),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The row already holds a newer event.
    Stale,
    /// No registry row: a client that is not a device (a tool, the local bridge).
    NotADevice,
}

/// Handles one event from the presence rule. Events that are not presence events are
/// refused with an error (the rule's SQL is wrong), never dropped silently.
pub async fn handle<S: ConnectivityStore>(
    store: &S,
    event: serde_json::Value,
) -> Result<Applied, FleetError> {
    let event: PresenceEvent =
        serde_json::from_value(event).map_err(|e| FleetError::NotPresence(e.to_string()))?;
    let change = PresenceChange::from_event(&event)?;
    let applied = store.apply(&change).await?;
    tracing::info!(
        connectivity = change.connectivity.as_str(),
        outcome = ?applied,
        "presence"
    );
    Ok(applied)
}

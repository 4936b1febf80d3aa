//! Presence: a device's row gets `connectivity` and `last_seen` from IoT Core's lifecycle
//! events, newer events only. The events arrive in batches from the presence queue, in
//! no particular order, and possibly twice.

use std::collections::{btree_map::Entry, BTreeMap};

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt as _;
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

/// What one batch from the presence queue came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Devices whose row took the batch's newest event of theirs.
    pub applied: usize,
    /// Events that changed nothing: older than the row, or than a later event of the
    /// same device in the batch.
    pub stale: usize,
    /// Events of clients without a registry row (tools, the local bridge).
    pub not_devices: usize,
    /// Messages to be received again: unreadable ones (after the queue's receive limit
    /// they wait on its dead-letter queue) and every message of a device whose write
    /// failed.
    pub failed: Vec<String>,
}

/// Rows written at once while a batch is applied.
const WRITES_IN_FLIGHT: usize = 16;

/// Handles a batch from the presence queue: each device's newest event of the batch is
/// written once (the older ones would be refused as stale anyway), a few devices at once.
pub async fn handle_batch<S: ConnectivityStore>(store: &S, event: SqsEvent) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut newest: BTreeMap<String, (PresenceChange, Vec<String>)> = BTreeMap::new();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let change = serde_json::from_str::<PresenceEvent>(message.body.as_deref().unwrap_or(""))
            .map_err(|e| FleetError::NotPresence(e.to_string()))
            .and_then(|event| PresenceChange::from_event(&event));
        let change = match change {
            Ok(change) => change,
            Err(err) => {
                tracing::warn!(message_id = id, error = %err, "unreadable presence message");
                outcome.failed.push(id);
                continue;
            }
        };
        match newest.entry(change.device_id.clone()) {
            Entry::Vacant(slot) => {
                slot.insert((change, vec![id]));
            }
            Entry::Occupied(mut slot) => {
                let (kept, ids) = slot.get_mut();
                ids.push(id);
                outcome.stale += 1;
                if change.order > kept.order {
                    *kept = change;
                }
            }
        }
    }
    let written: Vec<_> = futures::stream::iter(newest.into_values())
        .map(|(change, ids)| async move { (store.apply(&change).await, change, ids) })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await;
    for (result, change, ids) in written {
        match result {
            Ok(Applied::Applied) => outcome.applied += 1,
            Ok(Applied::Stale) => outcome.stale += 1,
            Ok(Applied::NotADevice) => outcome.not_devices += 1,
            Err(err) => {
                tracing::warn!(device_id = change.device_id, error = %err, "presence not recorded");
                outcome.failed.extend(ids);
            }
        }
    }
    tracing::info!(
        applied = outcome.applied,
        stale = outcome.stale,
        not_devices = outcome.not_devices,
        failed = outcome.failed.len(),
        "presence batch"
    );
    outcome
}

/// Handles one presence event. Events that are not presence events are refused with an
/// error (the rule's SQL is wrong), never dropped silently.
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

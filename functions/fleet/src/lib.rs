//! Fleet events delivered by IoT rules. Presence: IoT Core publishes a lifecycle event on
//! `$aws/events/presence/{connected|disconnected}/{clientId}` whenever a client connects
//! or goes; a rule hands it here, and the device's registry row gets `connectivity` and
//! `last_seen`. Events can arrive late or twice (the rule invokes asynchronously), so an
//! event only applies if it is newer than the one the row holds.
//!
//! Firmware uploads: the firmware bucket's notifications; see [`firmware`].
//!
//! Firmware rollouts: IoT Jobs' job and job-execution events, and retries coming back
//! from the delay queue; see [`rollout`].
//!
//! Command answers: a device answers a command on `devices/{id}/commands/ack`; the ack
//! rule adds the device id from the topic and hands it here to be recorded
//! ([`hub_fleet::command`] says which answers count).

pub mod aws;
pub mod firmware;
pub mod memory;
pub mod rollout;

use std::future::Future;

use chrono::{DateTime, TimeZone, Utc};
use hub_fleet::command::{AckOutcome, CommandAck};
use hub_runtime::PortError;
use serde::Deserialize;

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

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("not an event this function handles (no eventType, no command_id)")]
    Unknown,
    #[error("not a presence event: {0}")]
    NotPresence(String),
    #[error(transparent)]
    Store(#[from] PortError),
    #[error(transparent)]
    Rollout(#[from] rollout::RolloutError),
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

pub trait ConnectivityStore {
    /// Records the change if the row exists and holds no newer one.
    fn apply(
        &self,
        change: &PresenceChange,
    ) -> impl Future<Output = Result<Applied, PortError>> + Send;
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

/// Where command answers are recorded.
pub trait CommandAnswers {
    fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<AckOutcome, PortError>> + Send;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Presence(Applied),
    Answer(AckOutcome),
    Firmware(Vec<firmware::Checked>),
    Rollout(rollout::Handled),
    Retries(Vec<rollout::Handled>),
    /// A device's answer that is not one (bad JSON shape, oversized result); logged
    /// with the reason. Retrying cannot fix it, so it is not an error to the runtime.
    AnswerRefused(String),
}

/// Handles one event: presence and job events carry `eventType`, command answers
/// `command_id`, firmware bucket notifications `Records` from `aws:s3`, due retries
/// `Records` from `aws:sqs`.
pub async fn dispatch<
    S: ConnectivityStore,
    C: CommandAnswers,
    F: firmware::FirmwareChecks,
    R: rollout::RolloutPorts,
>(
    registry: &S,
    commands: &C,
    images: &F,
    rollouts: &R,
    event: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Outcome, FleetError> {
    if firmware::is_s3_event(&event) {
        return Ok(Outcome::Firmware(
            firmware::handle(images, event, now).await?,
        ));
    }
    if is_sqs_event(&event) {
        let mut handled = Vec::new();
        for body in event["Records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["body"].as_str())
        {
            let retry: rollout::RetryDue = serde_json::from_str(body)
                .map_err(|e| rollout::RolloutError::Unreadable(e.to_string()))?;
            handled.push(rollout::on_retry_due(rollouts, &retry, now).await?);
        }
        return Ok(Outcome::Retries(handled));
    }
    match event.get("eventType").and_then(|t| t.as_str()) {
        Some("JOB_EXECUTION") => {
            return Ok(Outcome::Rollout(
                rollout::on_execution(rollouts, event, now).await?,
            ))
        }
        Some("JOB") => {
            return Ok(Outcome::Rollout(
                rollout::on_job(rollouts, event, now).await?,
            ))
        }
        _ => {}
    }
    if event.get("eventType").is_some() {
        return handle(registry, event).await.map(Outcome::Presence);
    }
    if event.get("command_id").is_none() {
        return Err(FleetError::Unknown);
    }
    let ack = match serde_json::from_value::<CommandAck>(event) {
        Ok(ack) => ack,
        Err(err) => return Ok(refused(err.to_string())),
    };
    if let Err(err) = ack.validate() {
        return Ok(refused(err.to_string()));
    }
    let outcome = commands.record_ack(&ack, now).await?;
    match &outcome {
        AckOutcome::Recorded | AckOutcome::Duplicate => {
            tracing::info!(command_id = ack.command_id, outcome = ?outcome, "command answer")
        }
        _ => tracing::warn!(
            command_id = ack.command_id,
            outcome = ?outcome,
            "command answer not recorded"
        ),
    }
    Ok(Outcome::Answer(outcome))
}

fn is_sqs_event(event: &serde_json::Value) -> bool {
    event["Records"]
        .as_array()
        .and_then(|records| records.first())
        .is_some_and(|r| r["eventSource"] == "aws:sqs")
}

fn refused(reason: String) -> Outcome {
    tracing::warn!(reason, "command answer refused");
    Outcome::AnswerRefused(reason)
}

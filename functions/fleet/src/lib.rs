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
//! rule selects the answer fields, adds the device id from the topic and hands them here
//! to be recorded ([`hub_fleet::command`] says which answers count).
//!
//! What an event is comes from where it came from, never from its contents: see
//! [`source`].

pub mod aws;
pub mod firmware;
pub mod memory;
pub mod rollout;
pub mod source;

use std::future::Future;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, TimeZone, Utc};
use hub_fleet::command::{AckOutcome, AckStatus, CommandAck};
use hub_runtime::PortError;
use serde::Deserialize;
pub use source::{Origins, Source};

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
    #[error("not an event of a source this function takes: {0}")]
    Source(#[from] source::SourceError),
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
    /// Due retries from the queue: what each readable message did, and the message ids
    /// that failed (reported back so only those are received again, and after the
    /// queue's receive limit wait on its dead-letter queue).
    Retries {
        handled: Vec<rollout::Handled>,
        failed: Vec<String>,
    },
    /// A device's answer that is not one (bad JSON shape, oversized result); logged
    /// with the reason. Retrying cannot fix it, so it is not an error to the runtime.
    AnswerRefused(String),
}

impl Outcome {
    /// The function's answer to the runtime: the partial batch response for queue
    /// messages, a summary otherwise.
    pub fn response(&self) -> serde_json::Value {
        match self {
            Outcome::Retries { failed, .. } => serde_json::json!({
                "batchItemFailures": failed
                    .iter()
                    .map(|id| serde_json::json!({ "itemIdentifier": id }))
                    .collect::<Vec<_>>()
            }),
            other => serde_json::json!({ "outcome": format!("{other:?}") }),
        }
    }
}

/// What the command-answer rule hands over: the answer fields it selects by name, the
/// device id from the topic and the rule's own name. Anything else means the rule is
/// not the one deployed, and the event is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleAnswer {
    #[serde(rename = "hub_rule")]
    _rule: String,
    device_id: String,
    command_id: String,
    status: AckStatus,
    #[serde(default)]
    result: Option<serde_json::Value>,
}

/// The fleet function: its ports, and where its trusted events come from.
pub struct Fleet<S, C, F, R> {
    pub origins: Origins,
    pub registry: S,
    pub commands: C,
    pub images: F,
    pub rollouts: R,
}

impl<S, C, F, R> Fleet<S, C, F, R>
where
    S: ConnectivityStore,
    C: CommandAnswers,
    F: firmware::FirmwareChecks,
    R: rollout::RolloutPorts,
{
    /// One event in, the answer its invoker reads out (see [`dispatch`]).
    pub async fn handle(
        &self,
        event: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, FleetError> {
        let outcome = dispatch(
            &self.origins,
            &self.registry,
            &self.commands,
            &self.images,
            &self.rollouts,
            event,
            now,
        );
        outcome.await.map(|outcome| outcome.response())
    }
}

/// Handles one event after naming its source ([`source`]): the source decides what
/// the event is, never its contents.
pub async fn dispatch<
    S: ConnectivityStore,
    C: CommandAnswers,
    F: firmware::FirmwareChecks,
    R: rollout::RolloutPorts,
>(
    origins: &Origins,
    registry: &S,
    commands: &C,
    images: &F,
    rollouts: &R,
    event: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Outcome, FleetError> {
    match origins.source_of(&event)? {
        Source::FirmwareUpload => Ok(Outcome::Firmware(
            firmware::handle(images, event, now).await?,
        )),
        Source::RolloutRetry => retries(rollouts, event, now).await,
        Source::JobExecution => Ok(Outcome::Rollout(
            rollout::on_execution(rollouts, event, now).await?,
        )),
        Source::Job => Ok(Outcome::Rollout(
            rollout::on_job(rollouts, event, now).await?,
        )),
        Source::Presence => handle(registry, event).await.map(Outcome::Presence),
        Source::CommandAnswer => answer(commands, event, now).await,
    }
}

async fn answer<C: CommandAnswers>(
    commands: &C,
    event: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Outcome, FleetError> {
    let ack = match serde_json::from_value::<RuleAnswer>(event) {
        Ok(answer) => CommandAck {
            device_id: answer.device_id,
            command_id: answer.command_id,
            status: answer.status,
            result: answer.result,
        },
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

/// Each due retry on its own: one unreadable or failing message does not hold back the
/// others of its batch.
async fn retries<R: rollout::RolloutPorts>(
    rollouts: &R,
    event: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Outcome, FleetError> {
    let event: SqsEvent = serde_json::from_value(event)
        .map_err(|e| rollout::RolloutError::Unreadable(e.to_string()))?;
    let (mut handled, mut failed) = (Vec::new(), Vec::new());
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let due = serde_json::from_str::<rollout::RetryDue>(message.body.as_deref().unwrap_or(""))
            .map_err(|e| FleetError::from(rollout::RolloutError::Unreadable(e.to_string())));
        let result = match due {
            Ok(due) => rollout::on_retry_due(rollouts, &due, now)
                .await
                .map_err(FleetError::from),
            Err(err) => Err(err),
        };
        match result {
            Ok(outcome) => handled.push(outcome),
            Err(err) => {
                tracing::warn!(message_id = id, error = %err, "retry message failed");
                failed.push(id);
            }
        }
    }
    Ok(Outcome::Retries { handled, failed })
}

fn refused(reason: String) -> Outcome {
    tracing::warn!(reason, "command answer refused");
    Outcome::AnswerRefused(reason)
}

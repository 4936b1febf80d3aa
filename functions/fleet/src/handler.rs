//! One event in, dispatched by its source, and the answer its invoker reads out.

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use hub_fleet::{
    command::{AckOutcome, AckStatus, CommandAck},
    CommandsTable,
};
use serde::Deserialize;

use crate::{
    firmware, presence, rollout, ConnectivityStore, FirmwareChecks, FleetError, Origins,
    RolloutPorts, Source,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Presence(presence::BatchOutcome),
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
            Outcome::Retries { failed, .. }
            | Outcome::Presence(presence::BatchOutcome { failed, .. }) => serde_json::json!({
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
    C: CommandsTable,
    F: FirmwareChecks,
    R: RolloutPorts,
{
    /// One event in, the answer its invoker reads out (see [`dispatch`]).
    pub async fn handle(
        &self,
        event: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, FleetError> {
        // Boxed: the dispatch future nests deep enough to exceed the compiler's layout
        // depth inside the runtime's own futures; one allocation an event is nothing.
        let outcome = Box::pin(dispatch(
            &self.origins,
            &self.registry,
            &self.commands,
            &self.images,
            &self.rollouts,
            event,
            now,
        ));
        outcome.await.map(|outcome| outcome.response())
    }
}

/// Handles one event after naming its source ([`source`]): the source decides what
/// the event is, never its contents.
pub async fn dispatch<
    S: ConnectivityStore,
    C: CommandsTable,
    F: FirmwareChecks,
    R: RolloutPorts,
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
        Source::Presence => {
            let event: SqsEvent = serde_json::from_value(event)
                .map_err(|e| FleetError::NotPresence(e.to_string()))?;
            Ok(Outcome::Presence(
                presence::handle_batch(registry, event).await,
            ))
        }
        Source::CommandAnswer => answer(commands, event, now).await,
    }
}

async fn answer<C: CommandsTable>(
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
async fn retries<R: RolloutPorts>(
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

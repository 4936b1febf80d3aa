//! Connectivity columns of the devices table, written with a condition that keeps the
//! newest event: (timestamp, version) must not be older than what the row holds.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use hub_runtime::{
    dynamodb::{n, s},
    PortError,
};

use chrono::{DateTime, Utc};
use hub_fleet::{
    command::{AckOutcome, CommandAck},
    commands_table::DynamoCommands,
};

use crate::{Applied, CommandAnswers, ConnectivityStore, PresenceChange};

pub struct DynamoRegistry {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl ConnectivityStore for DynamoRegistry {
    async fn apply(&self, change: &PresenceChange) -> Result<Applied, PortError> {
        let mut set = "SET connectivity = :state, last_seen = :at, connectivity_at = :ts, \
                       connectivity_version = :version"
            .to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("device_id", s(&change.device_id))
            .expression_attribute_values(":state", s(change.connectivity.as_str()))
            .expression_attribute_values(":at", s(change.at.to_rfc3339()))
            .expression_attribute_values(":ts", n(change.order.0))
            .expression_attribute_values(":version", n(change.order.1));
        match &change.disconnect_reason {
            Some(reason) => {
                set.push_str(", disconnect_reason = :reason");
                request = request.expression_attribute_values(":reason", s(reason));
            }
            None => set.push_str(" REMOVE disconnect_reason"),
        }
        let result = request
            .update_expression(set)
            .condition_expression(
                "attribute_exists(device_id) AND (attribute_not_exists(connectivity_at) \
                 OR connectivity_at < :ts \
                 OR (connectivity_at = :ts AND connectivity_version <= :version))",
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Applied::Applied),
            Err(SdkError::ServiceError(e))
                if e.err().code() == Some("ConditionalCheckFailedException") =>
            {
                // Either no row or a newer event; tell them apart for the log.
                let row = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("device_id", s(&change.device_id))
                    .projection_expression("device_id")
                    .send()
                    .await
                    .map_err(|e| PortError::new("registry read", DisplayErrorContext(e)))?;
                Ok(if row.item.is_some() {
                    Applied::Stale
                } else {
                    Applied::NotADevice
                })
            }
            Err(err) => Err(PortError::new(
                "connectivity update",
                DisplayErrorContext(err),
            )),
        }
    }
}

impl CommandAnswers for DynamoCommands {
    async fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> Result<AckOutcome, PortError> {
        DynamoCommands::record_ack(self, ack, now)
            .await
            .map_err(|e| PortError::new("command answer", e))
    }
}

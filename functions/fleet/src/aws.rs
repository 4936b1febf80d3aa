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
    firmware::{hex, Artifact},
    firmware_table::DynamoFirmware,
};

use crate::firmware::{FirmwareChecks, ImageDigest};

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

/// The firmware table and bucket, for the upload check.
pub struct FirmwareImages {
    pub table: DynamoFirmware,
    pub s3: aws_sdk_s3::Client,
}

impl FirmwareChecks for FirmwareImages {
    async fn artifact(&self, version: &str) -> Result<Option<Artifact>, PortError> {
        self.table
            .get(version)
            .await
            .map_err(|e| PortError::new("firmware read", e))
    }

    /// Streams the object through SHA-256: images are never held whole in memory.
    async fn digest(&self, bucket: &str, key: &str) -> Result<ImageDigest, PortError> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    "firmware image read",
                    aws_sdk_s3::error::DisplayErrorContext(e),
                )
            })?;
        let mut body = object.body;
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| PortError::new("firmware image read", e))?
        {
            size += chunk.len() as u64;
            context.update(&chunk);
        }
        Ok(ImageDigest {
            size,
            sha256: hex(context.finish().as_ref()),
        })
    }

    async fn set_checked(
        &self,
        version: &str,
        outcome: Result<(), String>,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.table
            .set_checked(version, outcome, at)
            .await
            .map_err(|e| PortError::new("firmware write", e))
    }
}

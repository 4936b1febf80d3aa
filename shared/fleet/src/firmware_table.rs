//! Firmware artifacts in their table, keyed by version.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use hub_runtime::dynamodb::{is_condition_failure, n, number, s, string, time, Item};

use crate::{
    firmware::{Artifact, ArtifactStatus},
    tables::{sdk_error, FirmwareTable, TableError},
};

#[derive(Clone, Debug)]
pub struct DynamoFirmware {
    pub client: Client,
    pub table: String,
}

pub fn from_item(item: &Item) -> Option<Artifact> {
    Some(Artifact {
        version: string(item, "artifact_id")?,
        device_type: string(item, "device_type")?,
        sha256: string(item, "sha256")?,
        size: number(item, "size")?,
        signature: string(item, "signature")?,
        signature_verified: item
            .get("signature_verified")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        status: ArtifactStatus::from_name(&string(item, "status")?)?,
        reason: string(item, "reason"),
        s3_key: string(item, "s3_key")?,
        created_at: time(item, "created_at")?,
        created_by: string(item, "created_by").unwrap_or_default(),
        checked_at: time(item, "checked_at"),
    })
}

pub fn to_item(artifact: &Artifact) -> Item {
    let mut item = Item::from([
        ("artifact_id".to_owned(), s(&artifact.version)),
        ("device_type".to_owned(), s(&artifact.device_type)),
        ("sha256".to_owned(), s(&artifact.sha256)),
        ("size".to_owned(), n(artifact.size)),
        ("signature".to_owned(), s(&artifact.signature)),
        (
            "signature_verified".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(artifact.signature_verified),
        ),
        ("status".to_owned(), s(artifact.status.as_str())),
        ("s3_key".to_owned(), s(&artifact.s3_key)),
        ("created_at".to_owned(), s(artifact.created_at.to_rfc3339())),
        ("created_by".to_owned(), s(&artifact.created_by)),
    ]);
    if let Some(reason) = &artifact.reason {
        item.insert("reason".into(), s(reason));
    }
    if let Some(at) = artifact.checked_at {
        item.insert("checked_at".into(), s(at.to_rfc3339()));
    }
    item
}

impl FirmwareTable for DynamoFirmware {
    async fn put(&self, artifact: &Artifact) -> Result<bool, TableError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(artifact)))
            .condition_expression("attribute_not_exists(artifact_id)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("firmware write")(err)),
        }
    }

    async fn get(&self, version: &str) -> Result<Option<Artifact>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("artifact_id", s(version))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("firmware read"))?;
        Ok(output.item.as_ref().and_then(from_item))
    }

    async fn all(&self) -> Result<Vec<Artifact>, TableError> {
        let mut artifacts = Vec::new();
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(sdk_error("firmware read"))?;
            artifacts.extend(from_item(&item));
        }
        Ok(artifacts)
    }

    /// Only a pending artifact moves, so a second upload to the same key cannot turn a
    /// rejected artifact ready or the other way.
    async fn set_checked(
        &self,
        version: &str,
        outcome: Result<(), String>,
        at: DateTime<Utc>,
    ) -> Result<bool, TableError> {
        let (status, reason) = match outcome {
            Ok(()) => (ArtifactStatus::Ready, None),
            Err(reason) => (ArtifactStatus::Rejected, Some(reason)),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("artifact_id", s(version))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(ArtifactStatus::PendingUpload.as_str()))
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":at", s(at.to_rfc3339()));
        update = match reason {
            Some(reason) => update
                .update_expression("SET #status = :status, checked_at = :at, reason = :reason")
                .expression_attribute_values(":reason", s(reason)),
            None => update.update_expression("SET #status = :status, checked_at = :at"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("firmware write")(err)),
        }
    }
}

//! API keys in the device credentials table: `device_id` (hash), `credential_id` =
//! `api_key#{key_id}` (range), so a device can hold several keys while one rotates out.

use aws_sdk_dynamodb::{error::DisplayErrorContext, types::AttributeValue, Client};
use chrono::{DateTime, Utc};

use crate::StoredKey;

const PREFIX: &str = "api_key#";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("credentials table: {0}")]
    Aws(String),
    #[error("credentials table row {0} is not an API key record: {1}")]
    Corrupt(String, &'static str),
}

#[derive(Clone, Debug)]
pub struct DynamoApiKeys {
    pub client: Client,
    pub table: String,
}

impl DynamoApiKeys {
    pub async fn get(
        &self,
        device_id: &str,
        key_id: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("device_id", AttributeValue::S(device_id.to_owned()))
            .key(
                "credential_id",
                AttributeValue::S(format!("{PREFIX}{key_id}")),
            )
            .send()
            .await
            .map_err(|e| StoreError::Aws(DisplayErrorContext(e).to_string()))?;
        output
            .item
            .map(|item| from_item(device_id, key_id, &item))
            .transpose()
    }

    /// Stores a new key; refuses to overwrite one with the same id.
    pub async fn put(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("device_id", AttributeValue::S(key.device_id.clone()))
            .item(
                "credential_id",
                AttributeValue::S(format!("{PREFIX}{}", key.key_id)),
            )
            .item("kind", AttributeValue::S("api_key".into()))
            .item("api_key_hash", AttributeValue::S(key.secret_hash.clone()))
            .item("created_at", AttributeValue::S(key.created_at.to_rfc3339()))
            .item(
                "status",
                AttributeValue::S(if key.revoked { "revoked" } else { "active" }.into()),
            )
            .condition_expression("attribute_not_exists(credential_id)");
        if let Some(expires_at) = key.expires_at {
            request = request.item("expires_at", AttributeValue::S(expires_at.to_rfc3339()));
        }
        request
            .send()
            .await
            .map_err(|e| StoreError::Aws(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// Every key of a device, revoked and expired ones included.
    pub async fn list(&self, device_id: &str) -> Result<Vec<StoredKey>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("device_id = :d AND begins_with(credential_id, :p)")
            .expression_attribute_values(":d", AttributeValue::S(device_id.to_owned()))
            .expression_attribute_values(":p", AttributeValue::S(PREFIX.to_owned()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| StoreError::Aws(DisplayErrorContext(e).to_string()))?;
            let key_id = item
                .get("credential_id")
                .and_then(|v| v.as_s().ok())
                .and_then(|id| id.strip_prefix(PREFIX))
                .ok_or_else(|| StoreError::Corrupt(device_id.to_owned(), "credential_id"))?
                .to_owned();
            keys.push(from_item(device_id, &key_id, &item)?);
        }
        Ok(keys)
    }

    /// Sets when a key stops being accepted (a rotation's grace period).
    pub async fn expire(
        &self,
        device_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("device_id", AttributeValue::S(device_id.to_owned()))
            .key(
                "credential_id",
                AttributeValue::S(format!("{PREFIX}{key_id}")),
            )
            .update_expression("SET expires_at = :at")
            .condition_expression("attribute_exists(credential_id)")
            .expression_attribute_values(":at", AttributeValue::S(at.to_rfc3339()))
            .send()
            .await
            .map_err(|e| StoreError::Aws(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// Marks a key revoked; it stays in the table as history.
    pub async fn revoke(
        &self,
        device_id: &str,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("device_id", AttributeValue::S(device_id.to_owned()))
            .key(
                "credential_id",
                AttributeValue::S(format!("{PREFIX}{key_id}")),
            )
            .update_expression("SET #status = :revoked, revoked_at = :now")
            .condition_expression("attribute_exists(credential_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoked", AttributeValue::S("revoked".into()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .send()
            .await
            .map_err(|e| StoreError::Aws(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

fn from_item(
    device_id: &str,
    key_id: &str,
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<StoredKey, StoreError> {
    let row = || format!("{device_id}/{PREFIX}{key_id}");
    let text = |name: &'static str| item.get(name).and_then(|v| v.as_s().ok());
    let time = |name: &'static str| -> Result<Option<DateTime<Utc>>, StoreError> {
        text(name)
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| StoreError::Corrupt(row(), name))
            })
            .transpose()
    };
    Ok(StoredKey {
        device_id: device_id.to_owned(),
        key_id: key_id.to_owned(),
        secret_hash: text("api_key_hash")
            .ok_or_else(|| StoreError::Corrupt(row(), "api_key_hash"))?
            .to_owned(),
        created_at: time("created_at")?.ok_or_else(|| StoreError::Corrupt(row(), "created_at"))?,
        expires_at: time("expires_at")?,
        revoked: text("status").map(String::as_str) != Some("active"),
    })
}

//! The upload check of firmware images: the firmware bucket tells this function of every
//! object created under `firmware/`; the image is read, its size and SHA-256 compared with
//! the registration, and the artifact becomes `ready` or `rejected` with the reason.

use crate::FirmwareChecks;

use chrono::{DateTime, Utc};
use hub_fleet::{
    firmware::{check_upload, version_of_key},
    FirmwareTable,
};
use hub_runtime::PortError;
use serde_json::Value;

/// An image as read back: its size and SHA-256 (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDigest {
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    Ready(String),
    Rejected(String, String),
    /// Not an image of a registered, pending artifact at its own key; logged.
    Ignored(String),
}

/// Whether an event is an S3 notification.
pub fn is_s3_event(event: &Value) -> bool {
    event["Records"][0]["eventSource"] == "aws:s3"
}

/// Checks every image the event names.
pub async fn handle<F: FirmwareChecks>(
    store: &F,
    event: Value,
    now: DateTime<Utc>,
) -> Result<Vec<Checked>, PortError> {
    let event: aws_lambda_events::event::s3::S3Event =
        serde_json::from_value(event).map_err(|e| PortError::new("s3 event", e))?;
    let mut outcomes = Vec::new();
    for record in event.records {
        let (Some(bucket), Some(key)) = (record.s3.bucket.name, record.s3.object.key) else {
            continue;
        };
        // Keys arrive URL-encoded, spaces as '+'.
        let key = percent_encoding::percent_decode_str(&key.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        let version = record.s3.object.version_id.filter(|v| !v.is_empty());
        outcomes.push(check(store, &bucket, &key, version.as_deref(), now).await?);
    }
    for outcome in &outcomes {
        match outcome {
            Checked::Ready(version) => tracing::info!(version, "firmware ready"),
            Checked::Rejected(version, reason) => {
                tracing::warn!(version, reason, "firmware rejected")
            }
            Checked::Ignored(why) => tracing::warn!(why, "firmware object ignored"),
        }
    }
    Ok(outcomes)
}

async fn check<F: FirmwareChecks>(
    store: &F,
    bucket: &str,
    key: &str,
    object_version: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Checked, PortError> {
    let Some(version) = version_of_key(key) else {
        return Ok(Checked::Ignored(format!("{key}: not a firmware image key")));
    };
    let Some(artifact) = store.table().get(version).await? else {
        return Ok(Checked::Ignored(format!(
            "{key}: version {version} is not registered"
        )));
    };
    if artifact.s3_key != key {
        return Ok(Checked::Ignored(format!(
            "{key}: not the key registered for {version}"
        )));
    }
    let digest = store.digest(bucket, key, object_version).await?;
    let outcome = check_upload(&artifact, digest.size, &digest.sha256);
    if !store
        .table()
        .set_checked(version, outcome.clone(), now)
        .await?
    {
        return Ok(Checked::Ignored(format!(
            "{key}: {version} was checked before"
        )));
    }
    Ok(match outcome {
        Ok(()) => Checked::Ready(version.to_owned()),
        Err(reason) => Checked::Rejected(version.to_owned(), reason),
    })
}

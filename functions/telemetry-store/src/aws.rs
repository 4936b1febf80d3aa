//! The stores over DynamoDB and S3.

use std::collections::HashMap;

use aws_sdk_dynamodb::{error::SdkError, operation::put_item::PutItemError, types::AttributeValue};
use futures::{StreamExt as _, TryStreamExt as _};
use hub_runtime::{
    dead_letter::DeadLetter,
    dynamodb::{n, put, s},
};

use crate::{
    ports::{StoreError, Stores},
    process::{ArchiveObject, HotRow, LatestReading},
};

/// Parallel requests per store call: enough to hide round trips, few enough not to
/// exhaust a small function's connections.
const CONCURRENCY: usize = 16;

pub struct AwsStores {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub telemetry_table: String,
    pub latest_table: String,
    pub s3: aws_sdk_s3::Client,
    pub archive_bucket: String,
    pub dead_letter_bucket: String,
}

fn row_item(row: &HotRow) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("series".to_owned(), s(&row.series)),
        ("ts_seq".to_owned(), s(&row.sort_key)),
        ("ts".to_owned(), n(row.ts_ms)),
        ("value".to_owned(), n(row.value)),
        ("device_id".to_owned(), s(&row.device_id)),
        ("expires_at".to_owned(), n(row.expires_at)),
    ]);
    if let Some(unit) = &row.unit {
        item.insert("unit".into(), s(unit));
    }
    if let Some(seq) = row.seq {
        item.insert("seq".into(), n(seq));
    }
    if row.clock_skew_corrected {
        item.insert("clock_skew_corrected".into(), AttributeValue::Bool(true));
    }
    if row.simulated {
        item.insert("simulated".into(), AttributeValue::Bool(true));
    }
    item
}

impl Stores for AwsStores {
    async fn put_rows(&self, rows: &[HotRow]) -> Result<(), StoreError> {
        let requests = rows.iter().map(|row| put(row_item(row))).collect();
        hub_runtime::dynamodb::batch_write(&self.dynamodb, &self.telemetry_table, requests)
            .await
            .map_err(|e| StoreError::new("hot store write", e))
    }

    async fn advance_latest(&self, readings: &[LatestReading]) -> Result<u64, StoreError> {
        let moved: Vec<bool> = futures::stream::iter(readings.iter().cloned())
            .map(|reading| self.put_latest(reading))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(moved.into_iter().filter(|m| *m).count() as u64)
    }

    async fn archive(&self, objects: &[ArchiveObject]) -> Result<(), StoreError> {
        futures::stream::iter(objects.iter().cloned())
            .map(|object| async move {
                self.s3
                    .put_object()
                    .bucket(&self.archive_bucket)
                    .key(&object.key)
                    .content_type("application/x-ndjson")
                    .body(object.body.into())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        StoreError::new("archive", aws_sdk_s3::error::DisplayErrorContext(e))
                    })
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await
    }

    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        hub_runtime::dead_letter::write(
            &self.s3,
            &self.dead_letter_bucket,
            "telemetry-store",
            letters,
        )
        .await
        .map_err(|e| StoreError::new("dead letter", e))
    }
}

impl AwsStores {
    /// One conditional put: only a newer measurement time replaces the stored one.
    async fn put_latest(&self, reading: LatestReading) -> Result<bool, StoreError> {
        let metrics = reading
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), n(v)))
            .collect();
        let mut item = HashMap::from([
            ("device_id".to_owned(), s(&reading.device_id)),
            ("ts".to_owned(), n(reading.ts_ms)),
            ("metrics".to_owned(), AttributeValue::M(metrics)),
            ("status".to_owned(), s(&reading.status)),
            (
                "received_at".to_owned(),
                s(reading.received_at.to_rfc3339()),
            ),
        ]);
        if let Some(seq) = reading.seq {
            item.insert("seq".into(), n(seq));
        }
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.latest_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(device_id) OR ts < :ts")
            .expression_attribute_values(":ts", n(reading.ts_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(err))
                if matches!(err.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::new(
                "latest write",
                aws_sdk_dynamodb::error::DisplayErrorContext(err),
            )),
        }
    }
}

//! A batch of the normalized stream in; rows, latest values, archive objects out.

use std::time::Instant;

use aws_lambda_events::{event::kinesis::KinesisEvent, streams::KinesisEventResponse};
use hub_runtime::{emf::Metrics, stream};
use lambda_runtime::LambdaEvent;
use tracing::info;

use crate::{
    plan::plan,
    ports::{StoreError, Stores},
};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub readings: u64,
    pub rows: u64,
    pub latest_advanced: u64,
    pub archive_objects: u64,
    pub dead_lettered: u64,
}

/// Writes a batch. Order: archive and dead letters first (nothing is acknowledged before
/// it is kept), then rows, then latest values. All writes are idempotent.
pub async fn store<S: Stores>(
    stores: &S,
    records: &[stream::StreamRecord],
    retention_days: i64,
) -> Result<Summary, StoreError> {
    let plan = plan(records, retention_days);
    if !plan.dead_letters.is_empty() {
        stores.dead_letter(&plan.dead_letters).await?;
    }
    if !plan.archive.is_empty() {
        stores.archive(&plan.archive).await?;
    }
    if !plan.rows.is_empty() {
        stores.put_rows(&plan.rows).await?;
    }
    let latest_advanced = if plan.latest.is_empty() {
        0
    } else {
        stores.advance_latest(&plan.latest).await?
    };
    Ok(Summary {
        readings: plan.readings,
        rows: plan.rows.len() as u64,
        latest_advanced,
        archive_objects: plan.archive.len() as u64,
        dead_lettered: plan.dead_letters.len() as u64,
    })
}

pub struct TelemetryStore<S> {
    pub stores: S,
    pub retention_days: i64,
    /// See the normalizer: off where the event source ignores partial batch responses.
    pub partial_batch_response: bool,
}

impl<S: Stores> TelemetryStore<S> {
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, StoreError> {
        let started = Instant::now();
        let records = stream::records(event.payload);
        let result = store(&self.stores, &records, self.retention_days).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let summary = result.as_ref().cloned().unwrap_or_default();
        let mut metrics = Metrics::new("telemetry-store");
        metrics
            .count("telemetry_readings_stored_total", summary.readings)
            .count("telemetry_rows_written_total", summary.rows)
            .count("telemetry_latest_advanced_total", summary.latest_advanced)
            .count("archive_objects_written_total", summary.archive_objects)
            .count("dead_letters_total", summary.dead_lettered)
            .count(
                "telemetry_batch_failed_records",
                if result.is_err() {
                    records.len() as u64
                } else {
                    0
                },
            )
            .millis("processing_latency", latency_ms);
        metrics.flush();
        match result {
            Ok(summary) => {
                info!(
                    ?summary,
                    records = records.len(),
                    latency_ms,
                    "batch stored"
                );
                Ok(KinesisEventResponse::default())
            }
            // Every write is idempotent, so the retry is harmless.
            Err(err) => stream::failed_batch(err, &records, self.partial_batch_response),
        }
    }
}

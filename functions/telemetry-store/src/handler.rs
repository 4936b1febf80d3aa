//! The storage stage as a stream function: its stores and settings, and its metrics.

use hub_runtime::{
    emf::Metrics,
    stream::{BatchHandler, Processed, StreamRecord},
};

use crate::{
    ports::{StoreError, Stores},
    process::{store, Summary},
};

pub struct TelemetryStore<S> {
    pub stores: S,
    pub retention_days: i64,
    /// See [`BatchHandler::partial_batch_response`].
    pub partial_batch_response: bool,
}

impl<S: Stores> BatchHandler for TelemetryStore<S> {
    type Summary = Summary;
    type Error = StoreError;

    fn partial_batch_response(&self) -> bool {
        self.partial_batch_response
    }

    /// Every write is idempotent, so a retried batch is harmless.
    async fn process(&self, records: &[StreamRecord]) -> Processed<Summary, StoreError> {
        Processed::whole(
            store(&self.stores, records, self.retention_days).await,
            records,
        )
    }

    fn metrics(&self, processed: &Processed<Summary, StoreError>, _: usize) -> Vec<Metrics> {
        let summary = &processed.summary;
        let mut metrics = Metrics::new("telemetry-store");
        metrics
            .count("telemetry_readings_stored_total", summary.readings)
            .count("telemetry_rows_written_total", summary.rows)
            .count("telemetry_latest_advanced_total", summary.latest_advanced)
            .count("archive_objects_written_total", summary.archive_objects)
            .count("dead_letters_total", summary.dead_lettered)
            .count(
                "telemetry_batch_failed_records",
                processed.failed.len() as u64,
            );
        vec![metrics]
    }
}

//! A batch of the normalized stream in; detections out, state and aggregates written.

use std::time::Instant;

use aws_lambda_events::{event::kinesis::KinesisEvent, streams::KinesisEventResponse};
use hub_detection::DetectorConfig;
use hub_runtime::{emf::Metrics, stream};
use lambda_runtime::LambdaEvent;
use tracing::info;

use crate::{
    ports::{Detections, PortError, Rules, SeriesStore},
    process::{process, Ports},
};

pub struct AnomalyDetector<R, S, D> {
    pub rules: R,
    pub series: S,
    pub detections: D,
    pub config: DetectorConfig,
    /// Off where the event source ignores partial batch responses (the local emulator).
    pub partial_batch_response: bool,
}

impl<R: Rules, S: SeriesStore + Sync, D: Detections + Sync> AnomalyDetector<R, S, D> {
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, PortError> {
        let started = Instant::now();
        let records = stream::records(event.payload);
        let ports = Ports {
            rules: &self.rules,
            series: &self.series,
            detections: &self.detections,
        };
        let result = process(&ports, &self.config, &records).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let summary = result.as_ref().cloned().unwrap_or_default();
        Metrics::new("anomaly-detector")
            .count("detector_readings_total", summary.readings)
            .count("anomaly_events_total", summary.detections)
            .count("anomaly_cleared_total", summary.cleared)
            .count("detector_already_applied_total", summary.already_applied)
            .count("detector_state_conflicts_total", summary.conflicts)
            .count("detector_undecodable_total", summary.undecodable)
            .count(
                "detector_batch_failed_records",
                if result.is_err() {
                    records.len() as u64
                } else {
                    0
                },
            )
            .millis("processing_latency", latency_ms)
            .flush();
        match result {
            Ok(summary) => {
                info!(
                    ?summary,
                    records = records.len(),
                    latency_ms,
                    "batch judged"
                );
                Ok(KinesisEventResponse::default())
            }
            // Series already committed skip their points on the retry.
            Err(err) => stream::failed_batch(err, &records, self.partial_batch_response),
        }
    }
}

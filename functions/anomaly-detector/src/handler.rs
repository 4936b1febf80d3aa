//! The detector as a stream function: its ports and settings, and its metrics.

use hub_detection::DetectorConfig;
use hub_runtime::{
    emf::Metrics,
    stream::{BatchHandler, Processed, StreamRecord},
};

use crate::{
    ports::{Detections, PortError, Rules, SeriesStore},
    process::{process, Ports, Summary},
};

pub struct AnomalyDetector<R, S, D> {
    pub rules: R,
    pub series: S,
    pub detections: D,
    pub config: DetectorConfig,
    /// See [`BatchHandler::partial_batch_response`].
    pub partial_batch_response: bool,
}

impl<R: Rules, S: SeriesStore + Sync, D: Detections + Sync> BatchHandler
    for AnomalyDetector<R, S, D>
{
    type Summary = Summary;
    type Error = PortError;

    fn partial_batch_response(&self) -> bool {
        self.partial_batch_response
    }

    /// Series already committed skip their points on the retry.
    async fn process(&self, records: &[StreamRecord]) -> Processed<Summary, PortError> {
        let ports = Ports {
            rules: &self.rules,
            series: &self.series,
            detections: &self.detections,
        };
        Processed::whole(process(&ports, &self.config, records).await, records)
    }

    fn metrics(&self, processed: &Processed<Summary, PortError>, _: usize) -> Vec<Metrics> {
        let summary = &processed.summary;
        let mut metrics = Metrics::new("anomaly-detector");
        metrics
            .count("detector_readings_total", summary.readings)
            .count("anomaly_events_total", summary.detections)
            .count("anomaly_cleared_total", summary.cleared)
            .count("detector_already_applied_total", summary.already_applied)
            .count("detector_state_conflicts_total", summary.conflicts)
            .count("detector_undecodable_total", summary.undecodable)
            .count(
                "detector_batch_failed_records",
                processed.failed.len() as u64,
            );
        vec![metrics]
    }
}

//! The dispatcher as a stream function: its ports, and its metrics.

use hub_runtime::{
    emf::Metrics,
    stream::{BatchHandler, Processed, StreamRecord},
};

use crate::{
    ports::{Alerts, Claims, Notifier, PortError},
    process::{process, Ports, Summary},
};

pub struct AlertDispatcher<C, A, N> {
    pub claims: C,
    pub alerts: A,
    pub notifier: N,
    /// See [`BatchHandler::partial_batch_response`].
    pub partial_batch_response: bool,
}

impl<C: Claims + Sync, A: Alerts + Sync, N: Notifier + Sync> BatchHandler
    for AlertDispatcher<C, A, N>
{
    type Summary = Summary;
    type Error = PortError;

    fn partial_batch_response(&self) -> bool {
        self.partial_batch_response
    }

    /// A retried detection that already raised its alert only counts again.
    async fn process(&self, records: &[StreamRecord]) -> Processed<Summary, PortError> {
        let ports = Ports {
            claims: &self.claims,
            alerts: &self.alerts,
            notifier: &self.notifier,
        };
        Processed::whole(process(&ports, records).await, records)
    }

    fn metrics(&self, processed: &Processed<Summary, PortError>, _: usize) -> Vec<Metrics> {
        let summary = &processed.summary;
        let publish_failed = matches!(&processed.error, Some(e) if e.operation == "alert publish");
        let mut metrics = Metrics::new("alert-dispatcher");
        metrics
            .count("anomaly_events_received_total", summary.detections)
            .count("alerts_raised_total", summary.raised)
            .count("alerts_deduplicated_total", summary.deduplicated)
            .count("alerts_auto_resolved_total", summary.resolved)
            .count("alert_delivery_success_total", summary.raised)
            .count("alert_delivery_failure_total", u64::from(publish_failed))
            .count("alert_batch_failed_records", processed.failed.len() as u64);
        vec![metrics]
    }
}

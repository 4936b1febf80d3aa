//! A batch of the anomaly stream in; alerts raised, counted and resolved.

use std::time::Instant;

use aws_lambda_events::{event::kinesis::KinesisEvent, streams::KinesisEventResponse};
use hub_runtime::{emf::Metrics, stream};
use lambda_runtime::LambdaEvent;
use tracing::info;

use crate::{
    ports::{Alerts, Claims, Notifier, PortError},
    process::{process, Ports},
};

pub struct AlertDispatcher<C, A, N> {
    pub claims: C,
    pub alerts: A,
    pub notifier: N,
    pub partial_batch_response: bool,
}

impl<C: Claims + Sync, A: Alerts + Sync, N: Notifier + Sync> AlertDispatcher<C, A, N> {
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, PortError> {
        let started = Instant::now();
        let records = stream::records(event.payload);
        let ports = Ports {
            claims: &self.claims,
            alerts: &self.alerts,
            notifier: &self.notifier,
        };
        let result = process(&ports, &records).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let summary = result.as_ref().cloned().unwrap_or_default();
        Metrics::new("alert-dispatcher")
            .count("anomaly_events_received_total", summary.detections)
            .count("alerts_raised_total", summary.raised)
            .count("alerts_deduplicated_total", summary.deduplicated)
            .count("alerts_auto_resolved_total", summary.resolved)
            .count("alert_delivery_success_total", summary.raised)
            .count(
                "alert_delivery_failure_total",
                u64::from(matches!(&result, Err(e) if e.operation == "alert publish")),
            )
            .count(
                "alert_batch_failed_records",
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
                    "batch dispatched"
                );
                Ok(KinesisEventResponse::default())
            }
            // A retried detection that already raised its alert only counts again.
            Err(err) => stream::failed_batch(err, &records, self.partial_batch_response),
        }
    }
}

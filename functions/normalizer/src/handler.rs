//! A Kinesis event in, a partial batch response and metrics out.

use std::{collections::HashSet, time::Instant};

use aws_lambda_events::{event::kinesis::KinesisEvent, streams::KinesisEventResponse};
use hub_runtime::{emf::Metrics, stream};
use hub_telemetry::accounting::Tally;
use lambda_runtime::LambdaEvent;
use tracing::{error, info};

use crate::{
    ports::{DedupStore, DeviceStates, Outputs, PortError, Registry},
    process::{process, Config, Ports},
};

pub struct Normalizer<R, S, D, O> {
    pub registry: R,
    pub states: S,
    pub dedup: D,
    pub outputs: O,
    pub config: Config,
    /// Report failed records as batch item failures (AWS). Off where the event source
    /// ignores that response (the local emulator): the batch then fails as a whole and
    /// is redelivered, which the processing makes harmless.
    pub partial_batch_response: bool,
}

impl<R, S, D, O> Normalizer<R, S, D, O>
where
    R: Registry,
    S: DeviceStates,
    D: DedupStore,
    O: Outputs,
{
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, PortError> {
        let started = Instant::now();
        let records = stream::records(event.payload);
        let ports = Ports {
            registry: &self.registry,
            states: &self.states,
            dedup: &self.dedup,
            outputs: &self.outputs,
        };
        let result = process(&ports, &self.config, &records).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        for metrics in metrics(
            &result.tally,
            records.len(),
            result.failed.len(),
            latency_ms,
        ) {
            metrics.flush();
        }

        if let Some(error) = result.error {
            error!(%error, records = records.len(), "batch failed; it will be retried");
            if !self.partial_batch_response {
                return Err(error);
            }
        } else {
            info!(
                received = result.tally.received,
                stored = result.tally.stored,
                deduplicated = result.tally.deduplicated,
                dead_lettered = result.tally.dead_lettered_total(),
                dropped = result.tally.dropped_total(),
                latency_ms,
                "batch processed"
            );
        }
        let failed: HashSet<&str> = result.failed.iter().map(String::as_str).collect();
        Ok(stream::failures(
            records
                .iter()
                .filter(|r| failed.contains(r.position.as_str())),
        ))
    }
}

/// The batch's metrics: totals, plus one document per dead-letter and drop reason (with a
/// `Reason` dimension) so dashboards can split them.
fn metrics(tally: &Tally, records: usize, failed: usize, latency_ms: f64) -> Vec<Metrics> {
    let mut totals = Metrics::new(FUNCTION);
    totals
        .count("telemetry_ingest_rate", tally.received)
        .count("telemetry_stored_total", tally.stored)
        .count("telemetry_deduplicated_total", tally.deduplicated)
        .count("dead_letters_total", tally.dead_lettered_total())
        .count("telemetry_dropped_total", tally.dropped_total())
        .count(
            "telemetry_clock_skew_corrected_total",
            tally.clock_skew_corrected,
        )
        .count("telemetry_sequence_gaps_total", tally.sequence_gaps)
        .count("telemetry_sequence_resets_total", tally.sequence_resets)
        .count("telemetry_batch_records", records as u64)
        .count("telemetry_batch_failed_records", failed as u64)
        .millis("processing_latency", latency_ms);
    let mut all = vec![totals];
    for (reason, n) in &tally.dead_lettered {
        let mut by_reason = Metrics::new(FUNCTION);
        by_reason
            .dimension("Reason", reason)
            .count("dead_letters_total", *n);
        all.push(by_reason);
    }
    for (reason, n) in &tally.dropped {
        let mut by_reason = Metrics::new(FUNCTION);
        by_reason
            .dimension("Reason", reason)
            .count("telemetry_dropped_total", *n);
        all.push(by_reason);
    }
    all
}

const FUNCTION: &str = "normalizer";

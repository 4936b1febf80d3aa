//! The normalizer as a stream function: its ports and settings, and its metrics.

use hub_runtime::{
    emf::Metrics,
    stream::{BatchHandler, StreamRecord},
};
use hub_telemetry::accounting::Tally;

use crate::{
    ports::{DedupStore, DeviceStates, Outputs, PortError, Registry},
    process::{process, BatchResult, Config, Ports},
};

pub struct Normalizer<R, S, D, O> {
    pub registry: R,
    pub states: S,
    pub dedup: D,
    pub outputs: O,
    pub config: Config,
    /// See [`BatchHandler::partial_batch_response`].
    pub partial_batch_response: bool,
}

impl<R, S, D, O> BatchHandler for Normalizer<R, S, D, O>
where
    R: Registry,
    S: DeviceStates,
    D: DedupStore,
    O: Outputs,
{
    type Summary = Tally;
    type Error = PortError;

    fn partial_batch_response(&self) -> bool {
        self.partial_batch_response
    }

    async fn process(&self, records: &[StreamRecord]) -> BatchResult {
        let ports = Ports {
            registry: &self.registry,
            states: &self.states,
            dedup: &self.dedup,
            outputs: &self.outputs,
        };
        process(&ports, &self.config, records).await
    }

    fn metrics(&self, processed: &BatchResult, records: usize) -> Vec<Metrics> {
        metrics(&processed.summary, records, processed.failed.len())
    }
}

/// The batch's metrics: totals, plus one document per dead-letter and drop reason (with a
/// `Reason` dimension) so dashboards can split them.
fn metrics(tally: &Tally, records: usize, failed: usize) -> Vec<Metrics> {
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
        .count("telemetry_batch_failed_records", failed as u64);
    let mut all = vec![totals];
    for (reason, n) in &tally.dead_lettered {
        let mut by_reason = Metrics::new(FUNCTION);
        by_reason
            .dimension("Reason", reason.as_ref())
            .count("dead_letters_total", *n);
        all.push(by_reason);
    }
    for (reason, n) in &tally.dropped {
        let mut by_reason = Metrics::new(FUNCTION);
        by_reason
            .dimension("Reason", reason.as_ref())
            .count("telemetry_dropped_total", *n);
        all.push(by_reason);
    }
    all
}

const FUNCTION: &str = "normalizer";

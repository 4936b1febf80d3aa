//! One batch of the normalized stream through the detector.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use hub_detection::{
    detector::{observe, Detection, DetectorConfig, Point},
    window_of, DetectorState, ThresholdRule,
};
use hub_events::{AnomalyDetected, Envelope, NormalizedTelemetry};
use hub_runtime::stream::StreamRecord;
use tracing::warn;

use crate::ports::{Commit, Committed, Detections, PortError, Rules, SeriesStore, Versioned};

/// Series worked on at once.
const CONCURRENCY: usize = 16;
/// Attempts at a series before the batch is failed (and retried by the event source).
const ATTEMPTS: u32 = 8;
/// Windows a chunk of a series' points may touch: late readings' windows are written in
/// one transaction with the state (DynamoDB allows 100 items).
const MAX_WINDOWS_PER_COMMIT: usize = 50;
pub const SOURCE: &str = "anomaly-detector";
/// Namespace of detection event ids, which are derived from what caused them so that a
/// redelivered detection keeps its id.
const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1d_2b8e_4c3a_4e55_9d0a_7b6c_5e4f_3a21);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub readings: u64,
    pub series: u64,
    pub detections: u64,
    pub cleared: u64,
    pub already_applied: u64,
    pub conflicts: u64,
    /// Records that are not normalized telemetry (logged; nothing else can be done).
    pub undecodable: u64,
}

impl Summary {
    fn add(&mut self, other: &Summary) {
        self.readings += other.readings;
        self.series += other.series;
        self.detections += other.detections;
        self.cleared += other.cleared;
        self.already_applied += other.already_applied;
        self.conflicts += other.conflicts;
        self.undecodable += other.undecodable;
    }
}

pub struct Ports<'a, R, S, D> {
    pub rules: &'a R,
    pub series: &'a S,
    pub detections: &'a D,
}

/// A device#metric series of the batch.
#[derive(Debug, Default)]
struct Series {
    device_type: Option<String>,
    simulated: bool,
    points: Vec<Point>,
}

pub async fn process<R: Rules, S: SeriesStore + Sync, D: Detections + Sync>(
    ports: &Ports<'_, R, S, D>,
    config: &DetectorConfig,
    records: &[StreamRecord],
) -> Result<Summary, PortError> {
    let mut summary = Summary::default();
    let mut batch: BTreeMap<(String, String), Series> = BTreeMap::new();
    for record in records {
        let event = match Envelope::<NormalizedTelemetry>::from_slice(&record.data) {
            Ok(event) => event,
            Err(error) => {
                warn!(position = %record.position, %error, "not normalized telemetry; skipped");
                summary.undecodable += 1;
                continue;
            }
        };
        let reading = event.data;
        summary.readings += 1;
        for (metric, value) in &reading.metrics {
            let series = batch
                .entry((reading.device_id.clone(), metric.clone()))
                .or_default();
            series.device_type = reading.device.device_type.clone();
            series.simulated = event.simulated;
            series.points.push(Point {
                ts: reading.ts,
                value: *value,
                position: record.sequence_number.clone(),
            });
        }
    }
    if batch.is_empty() {
        return Ok(summary);
    }
    let rules = ports.rules.rules().await?;
    // Every series' state in a few batched reads; a series goes back to the store on its
    // own only for later chunks or after a conflict.
    let keys: Vec<String> = batch
        .keys()
        .map(|(device_id, metric)| series_key(device_id, metric))
        .collect();
    let mut preloaded = ports.series.load_many(&keys).await?;
    let results: Vec<Summary> =
        futures::stream::iter(batch)
            .map(|((device_id, metric), series)| {
                let loaded = preloaded.remove(&series_key(&device_id, &metric));
                let rules: Vec<&ThresholdRule> = rules
                    .iter()
                    .filter(|r| {
                        r.metric == metric
                            && r.applies_to(&device_id, series.device_type.as_deref())
                    })
                    .collect();
                async move {
                    run_series(ports, config, &device_id, &metric, &rules, series, loaded).await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
    for result in &results {
        summary.add(result);
    }
    Ok(summary)
}

pub fn series_key(device_id: &str, metric: &str) -> String {
    format!("{device_id}#{metric}")
}

async fn run_series<R, S: SeriesStore, D: Detections>(
    ports: &Ports<'_, R, S, D>,
    config: &DetectorConfig,
    device_id: &str,
    metric: &str,
    rules: &[&ThresholdRule],
    series: Series,
    mut preloaded: Option<Versioned<DetectorState>>,
) -> Result<Summary, PortError> {
    let key = series_key(device_id, metric);
    let mut summary = Summary {
        series: 1,
        ..Summary::default()
    };
    for chunk in chunks(&series.points, config) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let loaded = match preloaded.take() {
                Some(loaded) => loaded,
                None => ports
                    .series
                    .load_many(std::slice::from_ref(&key))
                    .await?
                    .remove(&key)
                    .unwrap_or_default(),
            };
            let mut state = loaded.value.clone();
            let outcome = observe(config, device_id, metric, rules, &mut state, chunk);
            if outcome.applied == 0 {
                // Every point was applied before: a redelivery.
                summary.already_applied += outcome.already_applied as u64;
                break;
            }
            // Detections go out before the state that records them is written: if the
            // write fails, the batch is redone and they go out again with the same ids
            // (the dispatcher counts them once per alert); they are never lost.
            let events: Vec<(String, Vec<u8>)> = outcome
                .detections
                .iter()
                .map(|(position, d)| (device_id.to_owned(), envelope(&series, &key, position, d)))
                .collect();
            if !events.is_empty() {
                ports.detections.emit(events).await?;
            }
            let width_ms = config.window.num_milliseconds();
            let mut late = outcome.late;
            if !outcome.closed.is_empty() {
                let refused = ports
                    .series
                    .store_closed(&key, &outcome.closed, width_ms)
                    .await?;
                for closed in &outcome.closed {
                    if refused.contains(&closed.start) {
                        late.entry(closed.start)
                            .or_default()
                            .merge(&closed.aggregate);
                    }
                }
            }
            let mut merged = BTreeMap::new();
            if !late.is_empty() {
                let starts: Vec<DateTime<Utc>> = late.keys().copied().collect();
                let mut stored = ports.series.load_windows(&key, &starts).await?;
                for (start, aggregate) in &late {
                    let mut window = stored.remove(start).unwrap_or_default();
                    window.value.merge(aggregate);
                    merged.insert(*start, window);
                }
            }
            let commit = Commit {
                state: Versioned {
                    value: state,
                    version: loaded.version,
                },
                late: merged,
                window_width_ms: width_ms,
            };
            match ports.series.commit(&key, &commit).await? {
                Committed::Yes => {
                    for (_, d) in &outcome.detections {
                        match d {
                            Detection::Detected(_) => summary.detections += 1,
                            Detection::Cleared(_) => summary.cleared += 1,
                        }
                    }
                    summary.already_applied += outcome.already_applied as u64;
                    break;
                }
                Committed::Conflict if attempt < ATTEMPTS => summary.conflicts += 1,
                Committed::Conflict => {
                    return Err(PortError::new(
                        "series commit",
                        format!("{key}: {ATTEMPTS} conflicting writes in a row"),
                    ))
                }
            }
        }
    }
    Ok(summary)
}

/// Consecutive runs of points that touch at most `MAX_WINDOWS_PER_COMMIT` windows each, so
/// a commit with late readings fits in one transaction.
fn chunks<'p>(points: &'p [Point], config: &DetectorConfig) -> Vec<&'p [Point]> {
    let mut chunks = Vec::new();
    let (mut start, mut windows) = (0, BTreeSet::new());
    for (i, point) in points.iter().enumerate() {
        let window = window_of(point.ts, config.window).start;
        if !windows.contains(&window) && windows.len() == MAX_WINDOWS_PER_COMMIT {
            chunks.push(&points[start..i]);
            start = i;
            windows.clear();
        }
        windows.insert(window);
    }
    if start < points.len() {
        chunks.push(&points[start..]);
    }
    chunks
}

fn envelope(series: &Series, key: &str, position: &str, detection: &Detection) -> Vec<u8> {
    let simulated = series.simulated;
    let (phase, kind, rule_id) = match detection {
        Detection::Detected(d) => ("detected", d.kind, &d.rule_id),
        Detection::Cleared(c) => ("cleared", c.kind, &c.rule_id),
    };
    let name = format!(
        "{key}|{position}|{phase}|{kind:?}|{}",
        rule_id.as_deref().unwrap_or("")
    );
    let id = uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string();
    match detection {
        Detection::Detected(d) => {
            let data = AnomalyDetected {
                device_type: series.device_type.clone(),
                ..d.clone()
            };
            let mut event = Envelope::new(SOURCE, d.device_id.clone(), d.ts, data);
            event.id = id;
            event.simulated(simulated).to_vec()
        }
        Detection::Cleared(c) => {
            let mut event = Envelope::new(SOURCE, c.device_id.clone(), c.ts, c.clone());
            event.id = id;
            event.simulated(simulated).to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_fifty_windows() {
        let config = DetectorConfig::default();
        let start: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        // Two points per five-minute window over 120 windows.
        let points: Vec<Point> = (0..240)
            .map(|i| Point {
                ts: start + chrono::Duration::seconds(150 * i),
                value: 1.0,
                position: i.to_string(),
            })
            .collect();
        let sizes: Vec<usize> = chunks(&points, &config).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [100, 100, 40]);
        assert!(chunks(&[], &config).is_empty());
    }
}

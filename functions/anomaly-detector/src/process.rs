//! One batch of the normalized stream through the detector.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use hub_detection::{
    detector::{observe, Detection, DetectorConfig, Point},
    window_of, Aggregate, ClosedWindow, DeviceState, ThresholdRule,
};
use hub_events::{AnomalyDetected, Envelope, NormalizedTelemetry};
use hub_runtime::stream::StreamRecord;
use tracing::warn;

use crate::ports::{Commit, Committed, Detections, PortError, Rules, SeriesStore, Versioned};

/// Devices worked on at once.
const CONCURRENCY: usize = 16;
/// Attempts at a series before the batch is failed (and retried by the event source).
const ATTEMPTS: u32 = 8;
/// Windows a chunk of a series' points may touch: late readings' windows are written in
/// one transaction with the state (DynamoDB allows 100 items).
const MAX_WINDOWS_PER_COMMIT: usize = 50;
/// Largest encoded device state written (DynamoDB items stop at 400 KB).
const MAX_STATE_BYTES: usize = 300 * 1024;
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

/// One reading of the batch.
#[derive(Debug)]
struct Reading {
    ts: DateTime<Utc>,
    /// Kinesis sequence number of its record.
    position: String,
    metrics: BTreeMap<String, f64>,
}

/// A device's readings in the batch, in stream order.
#[derive(Debug, Default)]
struct Device {
    device_type: Option<String>,
    simulated: bool,
    readings: Vec<Reading>,
}

pub async fn process<R: Rules, S: SeriesStore + Sync, D: Detections + Sync>(
    ports: &Ports<'_, R, S, D>,
    config: &DetectorConfig,
    records: &[StreamRecord],
) -> Result<Summary, PortError> {
    let mut summary = Summary::default();
    let mut batch: BTreeMap<String, Device> = BTreeMap::new();
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
        let device = batch.entry(reading.device_id).or_default();
        device.device_type = reading.device.device_type;
        device.simulated = event.simulated;
        device.readings.push(Reading {
            ts: reading.ts,
            position: record.sequence_number.clone(),
            metrics: reading.metrics,
        });
    }
    if batch.is_empty() {
        return Ok(summary);
    }
    let rules = ports.rules.rules().await?;
    // Every device's state in a few batched reads; a device goes back to the store on its
    // own only for later chunks or after a conflict.
    let ids: Vec<String> = batch.keys().cloned().collect();
    let mut preloaded = ports.series.load_many(&ids).await?;
    let results: Vec<Summary> = futures::stream::iter(batch)
        .map(|(device_id, device)| {
            let loaded = preloaded.remove(&device_id);
            let rules = &rules;
            async move { run_device(ports, config, &device_id, rules, device, loaded).await }
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

/// What a chunk of a device's readings did to all of its series.
#[derive(Default)]
struct DeviceOutcome {
    /// Events to emit, with what counted them.
    events: Vec<(String, Vec<u8>)>,
    detections: u64,
    cleared: u64,
    applied: usize,
    already_applied: usize,
    /// By series key.
    closed: BTreeMap<String, Vec<ClosedWindow>>,
    late: BTreeMap<String, BTreeMap<DateTime<Utc>, Aggregate>>,
}

async fn run_device<R, S: SeriesStore, D: Detections>(
    ports: &Ports<'_, R, S, D>,
    config: &DetectorConfig,
    device_id: &str,
    rules: &[ThresholdRule],
    device: Device,
    mut preloaded: Option<Versioned<DeviceState>>,
) -> Result<Summary, PortError> {
    let metrics: BTreeSet<&String> = device
        .readings
        .iter()
        .flat_map(|r| r.metrics.keys())
        .collect();
    let rules_of: BTreeMap<&String, Vec<&ThresholdRule>> = metrics
        .iter()
        .map(|metric| {
            let watching = rules
                .iter()
                .filter(|r| {
                    &&r.metric == metric && r.applies_to(device_id, device.device_type.as_deref())
                })
                .collect();
            (*metric, watching)
        })
        .collect();
    let mut summary = Summary {
        series: metrics.len() as u64,
        ..Summary::default()
    };
    let width_ms = config.window.num_milliseconds();
    for chunk in chunks(&device.readings, config) {
        // Each series' points of the chunk.
        let mut points: BTreeMap<&String, Vec<Point>> = BTreeMap::new();
        for reading in chunk {
            for (metric, value) in &reading.metrics {
                points.entry(metric).or_default().push(Point {
                    ts: reading.ts,
                    value: *value,
                    position: reading.position.clone(),
                });
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let loaded = match preloaded.take() {
                Some(loaded) => loaded,
                None => ports
                    .series
                    .load_many(&[device_id.to_owned()])
                    .await?
                    .remove(device_id)
                    .unwrap_or_default(),
            };
            let mut state = loaded.value.clone();
            let mut outcome = DeviceOutcome::default();
            for (metric, points) in &points {
                let key = series_key(device_id, metric);
                let series_state = state.metrics.entry((*metric).clone()).or_default();
                let rules = rules_of.get(metric).map(Vec::as_slice).unwrap_or_default();
                let observed = observe(config, device_id, metric, rules, series_state, points);
                outcome.applied += observed.applied;
                outcome.already_applied += observed.already_applied;
                for (position, d) in &observed.detections {
                    match d {
                        Detection::Detected(_) => outcome.detections += 1,
                        Detection::Cleared(_) => outcome.cleared += 1,
                    }
                    outcome
                        .events
                        .push((device_id.to_owned(), envelope(&device, &key, position, d)));
                }
                if !observed.closed.is_empty() {
                    outcome.closed.insert(key.clone(), observed.closed);
                }
                if !observed.late.is_empty() {
                    outcome.late.insert(key, observed.late);
                }
            }
            if outcome.applied == 0 {
                // Every reading was applied before: a redelivery.
                summary.already_applied += outcome.already_applied as u64;
                break;
            }
            // Detections go out before the state that records them is written: if the
            // write fails, the batch is redone and they go out again with the same ids
            // (the dispatcher counts them once per alert); they are never lost.
            if !outcome.events.is_empty() {
                ports.detections.emit(outcome.events).await?;
            }
            let mut late = outcome.late;
            for (key, closed) in &outcome.closed {
                let refused = ports
                    .series
                    .store_closed(key, closed, loaded.version, width_ms)
                    .await?;
                for window in closed.iter().filter(|w| refused.contains(&w.start)) {
                    late.entry(key.clone())
                        .or_default()
                        .entry(window.start)
                        .or_default()
                        .merge(&window.aggregate);
                }
            }
            let mut merged = BTreeMap::new();
            for (key, windows) in &late {
                let starts: Vec<DateTime<Utc>> = windows.keys().copied().collect();
                let mut stored = ports.series.load_windows(key, &starts).await?;
                for (start, aggregate) in windows {
                    let mut window = stored.remove(start).unwrap_or_default();
                    window.value.merge(aggregate);
                    merged.insert((key.clone(), *start), window);
                }
            }
            let dropped = state.keep_within(MAX_STATE_BYTES);
            if !dropped.is_empty() {
                warn!(%device_id, ?dropped, "detector state too large; metrics heard from longest ago forgotten");
            }
            let commit = Commit {
                state: Versioned {
                    value: state,
                    version: loaded.version,
                },
                late: merged,
                window_width_ms: width_ms,
            };
            match ports.series.commit(device_id, &commit).await? {
                Committed::Yes => {
                    summary.detections += outcome.detections;
                    summary.cleared += outcome.cleared;
                    summary.already_applied += outcome.already_applied as u64;
                    break;
                }
                Committed::Conflict if attempt < ATTEMPTS => summary.conflicts += 1,
                Committed::Conflict => {
                    return Err(PortError::new(
                        "detector state commit",
                        format!("{device_id}: {ATTEMPTS} conflicting writes in a row"),
                    ))
                }
            }
        }
    }
    Ok(summary)
}

/// Consecutive runs of readings that touch at most `MAX_WINDOWS_PER_COMMIT` series
/// windows each, so a commit with late readings fits in one transaction.
fn chunks<'r>(readings: &'r [Reading], config: &DetectorConfig) -> Vec<&'r [Reading]> {
    let mut chunks = Vec::new();
    let (mut start, mut windows) = (0, BTreeSet::new());
    for (i, reading) in readings.iter().enumerate() {
        let window = window_of(reading.ts, config.window).start;
        let touched: Vec<(&String, DateTime<Utc>)> =
            reading.metrics.keys().map(|m| (m, window)).collect();
        let new = touched.iter().filter(|t| !windows.contains(*t)).count();
        if new > 0 && windows.len() + new > MAX_WINDOWS_PER_COMMIT && i > start {
            chunks.push(&readings[start..i]);
            start = i;
            windows.clear();
        }
        windows.extend(touched);
    }
    if start < readings.len() {
        chunks.push(&readings[start..]);
    }
    chunks
}

fn envelope(device: &Device, key: &str, position: &str, detection: &Detection) -> Vec<u8> {
    let simulated = device.simulated;
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
                device_type: device.device_type.clone(),
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
    fn chunks_hold_at_most_fifty_series_windows() {
        let config = DetectorConfig::default();
        let start: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        // Two readings of one metric per five-minute window over 120 windows.
        let readings: Vec<Reading> = (0..240)
            .map(|i| Reading {
                ts: start + chrono::Duration::seconds(150 * i),
                position: i.to_string(),
                metrics: BTreeMap::from([("t".to_owned(), 1.0)]),
            })
            .collect();
        let sizes: Vec<usize> = chunks(&readings, &config).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [100, 100, 40]);
        // Two metrics: each window is two series windows.
        let two: Vec<Reading> = readings
            .into_iter()
            .map(|mut r| {
                r.metrics.insert("h".to_owned(), 2.0);
                r
            })
            .collect();
        let sizes: Vec<usize> = chunks(&two, &config).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [50; 4].into_iter().chain([40]).collect::<Vec<_>>());
        assert!(chunks(&[], &config).is_empty());
    }
}

//! The detector's batch logic against in-memory ports: detections, state, aggregates,
//! redelivery and concurrent writers.

use std::{collections::BTreeMap, sync::atomic::Ordering};

use anomaly_detector::{
    memory::{MemoryDetections, MemoryRules, MemorySeries},
    process::{process, Ports, Summary},
};
use chrono::{DateTime, Duration, Utc};
use hub_detection::{AdaptiveConfig, DetectorConfig, Hysteresis, RuleScope, ThresholdRule};
use hub_events::{
    AnomalyCleared, AnomalyDetected, DeviceContext, Envelope, NormalizedTelemetry, Severity,
};
use hub_runtime::stream::StreamRecord;

fn start() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn config() -> DetectorConfig {
    let hysteresis = Hysteresis {
        raise_after: 2,
        clear_after: 3,
    };
    DetectorConfig {
        anomaly: AdaptiveConfig {
            warmup: 10,
            hysteresis,
            ..AdaptiveConfig::default()
        },
        threshold_hysteresis: hysteresis,
        ..DetectorConfig::default()
    }
}

/// Readings of one device, 10 s apart, at stream positions from `first_position`.
fn readings(
    device: &str,
    device_type: &str,
    temperatures: &[f64],
    first_position: u64,
) -> Vec<StreamRecord> {
    temperatures
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let ts = start() + Duration::seconds(10 * i as i64);
            let data = NormalizedTelemetry {
                device_id: device.into(),
                seq: Some(i as u64),
                ts,
                device_ts: ts,
                received_at: ts,
                clock_skew_ms: 0,
                clock_skew_corrected: false,
                metrics: BTreeMap::from([("temperature".to_owned(), *t)]),
                units: BTreeMap::from([("temperature".to_owned(), "celsius".to_owned())]),
                status: "OK".into(),
                device: DeviceContext {
                    device_type: Some(device_type.into()),
                    ..DeviceContext::default()
                },
            };
            let position = first_position + i as u64;
            StreamRecord::new(
                format!("shardId-000000000000:{position}"),
                Envelope::new("normalizer", device, ts, data).to_vec(),
            )
        })
        .collect()
}

fn hot_rule() -> ThresholdRule {
    ThresholdRule::new(
        "hot".into(),
        RuleScope::DeviceType("env-sensor".into()),
        "temperature > 80",
        Severity::Critical,
    )
    .unwrap()
}

struct Fixture {
    rules: MemoryRules,
    series: MemorySeries,
    detections: MemoryDetections,
}

impl Fixture {
    fn new(rules: Vec<ThresholdRule>) -> Self {
        Self {
            rules: MemoryRules(rules),
            series: MemorySeries::default(),
            detections: MemoryDetections::default(),
        }
    }

    async fn run(&self, records: &[StreamRecord]) -> Summary {
        let ports = Ports {
            rules: &self.rules,
            series: &self.series,
            detections: &self.detections,
        };
        process(&ports, &config(), records).await.unwrap()
    }

    fn detected(&self) -> Vec<Envelope<AnomalyDetected>> {
        self.detections
            .events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, bytes)| Envelope::from_slice(bytes).ok())
            .collect()
    }

    fn cleared(&self) -> Vec<Envelope<AnomalyCleared>> {
        self.detections
            .events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, bytes)| Envelope::from_slice(bytes).ok())
            .collect()
    }
}

/// 20 normal, 4 hot, 4 normal: one threshold episode (and one z-score episode).
fn episode() -> Vec<f64> {
    let mut t: Vec<f64> = (0..20).map(|i| 20.0 + (i % 4) as f64 * 0.5).collect();
    t.extend([90.0, 92.0, 91.0, 93.0]);
    t.extend([20.5, 21.0, 20.0, 20.5]);
    t
}

#[tokio::test]
async fn an_episode_is_detected_once_raised_and_cleared_once() {
    let f = Fixture::new(vec![hot_rule()]);
    let summary = f.run(&readings("d1", "env-sensor", &episode(), 100)).await;
    assert_eq!(summary.readings, 28);
    let threshold: Vec<_> = f
        .detected()
        .into_iter()
        .filter(|e| e.data.rule_id.as_deref() == Some("hot"))
        .collect();
    // Raised on the second hot reading; the two after it are in the same episode.
    assert_eq!(threshold.len(), 3);
    assert!(threshold.iter().all(|e| e.data.window.start == start()));
    assert_eq!(threshold[0].data.value, 92.0);
    assert_eq!(threshold[0].data.severity, Severity::Critical);
    assert_eq!(threshold[0].subject, "d1");
    assert_eq!(threshold[0].data.device_type.as_deref(), Some("env-sensor"));
    let cleared = f.cleared();
    assert_eq!(
        cleared
            .iter()
            .filter(|c| c.data.rule_id.as_deref() == Some("hot"))
            .count(),
        1
    );
    // The z-score saw it too, as its own episode.
    assert!(f
        .detected()
        .iter()
        .any(|e| e.data.rule_id.is_none() && e.data.score.unwrap() > 4.0));
    assert_eq!(summary.detections as usize, f.detected().len());
    // Every event goes to the device's partition.
    assert!(f
        .detections
        .events
        .lock()
        .unwrap()
        .iter()
        .all(|(key, _)| key == "d1"));
}

#[tokio::test]
async fn readings_of_other_device_types_do_not_meet_the_rule() {
    let f = Fixture::new(vec![hot_rule()]);
    f.run(&readings("m1", "dc-meter", &episode(), 100)).await;
    assert!(f.detected().iter().all(|e| e.data.rule_id.is_none()));
}

#[tokio::test]
async fn a_redelivered_batch_emits_nothing_and_counts_nothing_twice() {
    let f = Fixture::new(vec![hot_rule()]);
    let records = readings("d1", "env-sensor", &episode(), 100);
    f.run(&records).await;
    let events = f.detections.events.lock().unwrap().len();
    let windows = f.series.windows.lock().unwrap().clone();
    let states = f.series.states.lock().unwrap().clone();
    let again = f.run(&records).await;
    assert_eq!(again.already_applied, 28);
    assert_eq!(again.detections, 0);
    assert_eq!(f.detections.events.lock().unwrap().len(), events);
    assert_eq!(*f.series.windows.lock().unwrap(), windows);
    assert_eq!(*f.series.states.lock().unwrap(), states);
}

#[tokio::test]
async fn a_window_is_stored_when_the_series_moves_past_it_and_the_open_one_rides_in_the_state() {
    let f = Fixture::new(vec![]);
    let values: Vec<f64> = (0..40).map(f64::from).collect();
    let records = readings("d1", "env-sensor", &values, 100);
    // Two batches, split inside the first window.
    f.run(&records[..25]).await;
    assert!(f.series.windows.lock().unwrap().is_empty());
    f.run(&records[25..]).await;
    let windows = f.series.windows.lock().unwrap();
    let first = &windows[&("d1#temperature".to_owned(), start())].value;
    let a = first.summary().unwrap();
    assert_eq!((a.count, a.min, a.max, a.avg), (30, 0.0, 29.0, 14.5));
    assert_eq!(windows.len(), 1);
    let states = f.series.states.lock().unwrap();
    let open = states["d1"].value.metrics["temperature"]
        .open_window
        .unwrap();
    assert_eq!(open.start, start() + Duration::minutes(5));
    let b = open.aggregate.summary().unwrap();
    assert_eq!((b.count, b.min, b.max), (10, 30.0, 39.0));
}

#[tokio::test]
async fn a_redo_stores_a_closed_window_again_without_doubling_it() {
    let f = Fixture::new(vec![]);
    let values: Vec<f64> = (0..40).map(f64::from).collect();
    // The window is stored, then the state write loses twice and the series is redone.
    f.series.conflicts_to_inject.store(2, Ordering::SeqCst);
    let summary = f.run(&readings("d1", "env-sensor", &values, 100)).await;
    assert_eq!(summary.conflicts, 2);
    let windows = f.series.windows.lock().unwrap();
    let stored = &windows[&("d1#temperature".to_owned(), start())];
    assert_eq!((stored.value.stats.count, stored.version), (30, 1));
}

#[tokio::test]
async fn a_re_learned_state_merges_into_a_stored_window_instead_of_replacing_it() {
    let f = Fixture::new(vec![]);
    let values: Vec<f64> = (0..40).map(f64::from).collect();
    f.run(&readings("d1", "env-sensor", &values, 100)).await;
    // The state is lost (another format, say) and re-learned from what comes next: five
    // more readings of the stored window, then one of the window after.
    {
        let mut states = f.series.states.lock().unwrap();
        let state = states.get_mut("d1").unwrap();
        state.value = Default::default();
    }
    let mut again = readings("d1", "env-sensor", &[50.0; 5], 200);
    again.extend(
        readings("d1", "env-sensor", &[0.0; 31], 300)
            .into_iter()
            .skip(30),
    );
    f.run(&again).await;
    let windows = f.series.windows.lock().unwrap();
    let stored = &windows[&("d1#temperature".to_owned(), start())].value;
    let stats = stored.summary().unwrap();
    assert_eq!((stats.count, stats.max), (35, 50.0));
}

#[tokio::test]
async fn a_batch_that_never_lands_leaves_no_readings_in_a_window_it_closed() {
    let f = Fixture::new(vec![]);
    let first = readings(
        "d1",
        "env-sensor",
        &(0..10).map(f64::from).collect::<Vec<_>>(),
        100,
    );
    f.run(&first).await;
    // A batch that stores the window it moves past, then fails for good (its records go
    // to the failure queue); the next one moves past the same window at another reading.
    let lost = readings("d1", "env-sensor", &[1000.0; 31], 200);
    f.series.failures_to_inject.store(1, Ordering::SeqCst);
    let ports = Ports {
        rules: &f.rules,
        series: &f.series,
        detections: &f.detections,
    };
    assert!(process(&ports, &config(), &lost[10..]).await.is_err());
    let next = readings("d1", "env-sensor", &[5.0; 31], 300);
    f.run(&next[10..]).await;
    let windows = f.series.windows.lock().unwrap();
    let stats = windows[&("d1#temperature".to_owned(), start())]
        .value
        .summary()
        .unwrap();
    // The first batch's 10 and the next one's 20 of that window; none of the lost ones.
    assert_eq!((stats.count, stats.max), (30, 9.0));
}

#[tokio::test]
async fn late_readings_merge_into_their_stored_window_once() {
    let f = Fixture::new(vec![]);
    let values: Vec<f64> = (0..40).map(f64::from).collect();
    let records = readings("d1", "env-sensor", &values, 100);
    f.run(&records).await;
    // A reading of the first window arrives after the series moved on, then again.
    let mut late = readings("d1", "env-sensor", &[100.0], 200);
    f.run(&late).await;
    f.run(&late).await;
    let key = ("d1#temperature".to_owned(), start());
    let stored = f.series.windows.lock().unwrap()[&key].clone();
    let stats = stored.value.summary().unwrap();
    assert_eq!((stats.count, stats.max), (31, 100.0));
    assert_eq!(stored.version, 2);
    // A conflict on the late path redoes the merge from what is stored, not twice.
    late = readings("d1", "env-sensor", &[-5.0], 300);
    f.series.conflicts_to_inject.store(1, Ordering::SeqCst);
    let summary = f.run(&late).await;
    assert_eq!(summary.conflicts, 1);
    let stored = f.series.windows.lock().unwrap()[&key].clone();
    let stats = stored.value.summary().unwrap();
    assert_eq!((stats.count, stats.min), (32, -5.0));
}

#[tokio::test]
async fn a_conflicting_writer_makes_the_series_redo_not_double() {
    let f = Fixture::new(vec![hot_rule()]);
    f.series.conflicts_to_inject.store(2, Ordering::SeqCst);
    let summary = f.run(&readings("d1", "env-sensor", &episode(), 100)).await;
    assert_eq!(summary.conflicts, 2);
    let states = f.series.states.lock().unwrap();
    let open = states["d1"].value.metrics["temperature"]
        .open_window
        .unwrap();
    assert_eq!(open.aggregate.stats.count, 28);
    // Detections of the refused attempts went out again with the same ids.
    let detected = f.detected();
    let ids: std::collections::BTreeSet<&str> = detected.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len() as u64, summary.detections);
}

#[tokio::test]
async fn records_that_are_not_normalized_telemetry_are_skipped_and_counted() {
    let f = Fixture::new(vec![]);
    let mut records = readings("d1", "env-sensor", &[20.0, 21.0], 100);
    records.push(StreamRecord::new(
        "shardId-000000000000:999",
        b"{}".to_vec(),
    ));
    let summary = f.run(&records).await;
    assert_eq!((summary.readings, summary.undecodable), (2, 1));
}

//! The dispatcher against in-memory ports: one alert per episode, counted, resolved on
//! clear, and exactly one notification however many triggers race.

use std::sync::Arc;

use alert_dispatcher::{
    memory::{MemoryAlerts, MemoryClaims, MemoryNotifier},
    process::{dispatch, process, trigger, Ports, Summary},
};
use chrono::{DateTime, Duration, Utc};
use hub_events::{
    AlertState, AnomalyCleared, AnomalyDetected, DetectionKind, Envelope, Severity, Window,
};
use hub_runtime::stream::StreamRecord;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn window(start: &str) -> Window {
    let start = at(start);
    Window {
        start,
        end: start + Duration::minutes(5),
    }
}

fn detected(device: &str, ts: &str, window_start: &str, value: f64) -> Envelope<AnomalyDetected> {
    Envelope::new(
        "anomaly-detector",
        device,
        at(ts),
        AnomalyDetected {
            device_id: device.into(),
            device_type: Some("env-sensor".into()),
            metric: "temperature".into(),
            value,
            kind: DetectionKind::Threshold,
            score: None,
            model: None,
            baseline: None,
            rule_id: Some("hot".into()),
            rule: Some("temperature > 80".into()),
            severity: Severity::Critical,
            ts: at(ts),
            window: window(window_start),
        },
    )
}

fn cleared(device: &str, ts: &str, window_start: &str) -> Envelope<AnomalyCleared> {
    Envelope::new(
        "anomaly-detector",
        device,
        at(ts),
        AnomalyCleared {
            device_id: device.into(),
            metric: "temperature".into(),
            kind: DetectionKind::Threshold,
            rule_id: Some("hot".into()),
            ts: at(ts),
            window: window(window_start),
        },
    )
}

fn record(i: usize, bytes: Vec<u8>) -> StreamRecord {
    StreamRecord::new(format!("shardId-000000000000:{}", 1000 + i), bytes)
}

#[derive(Default)]
struct Fixture {
    claims: MemoryClaims,
    alerts: MemoryAlerts,
    notifier: MemoryNotifier,
}

impl Fixture {
    fn ports(&self) -> Ports<'_, MemoryClaims, MemoryAlerts, MemoryNotifier> {
        Ports {
            claims: &self.claims,
            alerts: &self.alerts,
            notifier: &self.notifier,
        }
    }

    async fn run(&self, records: &[StreamRecord]) -> Summary {
        process(&self.ports(), records).await.unwrap()
    }
}

#[tokio::test]
async fn an_episode_is_one_alert_counted_then_resolved() {
    let f = Fixture::default();
    let records = vec![
        record(
            0,
            detected("d1", "2026-11-23T10:04:50Z", "2026-11-23T10:00:00Z", 91.0).to_vec(),
        ),
        record(
            1,
            detected("d1", "2026-11-23T10:05:00Z", "2026-11-23T10:00:00Z", 92.0).to_vec(),
        ),
        record(
            2,
            detected("d1", "2026-11-23T10:05:10Z", "2026-11-23T10:00:00Z", 93.0).to_vec(),
        ),
        record(
            3,
            cleared("d1", "2026-11-23T10:05:40Z", "2026-11-23T10:00:00Z").to_vec(),
        ),
    ];
    let summary = f.run(&records).await;
    assert_eq!(
        (summary.detections, summary.raised, summary.deduplicated),
        (3, 1, 2)
    );
    assert_eq!((summary.cleared, summary.resolved), (1, 1));
    let sent = f.notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    let alert = &sent[0].data;
    assert_eq!((alert.count, alert.state), (1, AlertState::Open));
    assert_eq!(alert.summary, "temperature > 80 (value 91)");
    assert_eq!(alert.device_type.as_deref(), Some("env-sensor"));
    let rows = f.alerts.alerts.lock().unwrap();
    let row = &rows[&alert.alert_id];
    assert_eq!((row.count, row.state), (3, AlertState::Resolved));
}

#[tokio::test]
async fn episodes_in_other_windows_or_on_other_devices_are_other_alerts() {
    let f = Fixture::default();
    let records = vec![
        record(
            0,
            detected("d1", "2026-11-23T10:01:00Z", "2026-11-23T10:00:00Z", 91.0).to_vec(),
        ),
        record(
            1,
            detected("d1", "2026-11-23T10:21:00Z", "2026-11-23T10:20:00Z", 91.0).to_vec(),
        ),
        record(
            2,
            detected("d2", "2026-11-23T10:01:00Z", "2026-11-23T10:00:00Z", 91.0).to_vec(),
        ),
    ];
    assert_eq!(f.run(&records).await.raised, 3);
}

#[tokio::test]
async fn a_redelivered_batch_does_not_notify_again() {
    let f = Fixture::default();
    let records = vec![record(
        0,
        detected("d1", "2026-11-23T10:01:00Z", "2026-11-23T10:00:00Z", 91.0).to_vec(),
    )];
    f.run(&records).await;
    let again = f.run(&records).await;
    assert_eq!((again.raised, again.deduplicated), (0, 1));
    assert_eq!(f.notifier.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_clear_without_an_alert_resolves_nothing() {
    let f = Fixture::default();
    let records = vec![record(
        0,
        cleared("d1", "2026-11-23T10:05:40Z", "2026-11-23T10:00:00Z").to_vec(),
    )];
    let summary = f.run(&records).await;
    assert_eq!((summary.cleared, summary.resolved), (1, 0));
}

#[tokio::test]
async fn racing_triggers_make_one_notification_and_count_them_all() {
    let f = Arc::new(Fixture::default());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let f = f.clone();
        tasks.spawn(async move {
            let event = detected(
                "d1",
                &format!("2026-11-23T10:01:{:02}Z", i % 60),
                "2026-11-23T10:00:00Z",
                90.0 + i as f64,
            );
            dispatch(&f.ports(), &trigger(&event)).await.unwrap().raised
        });
    }
    let raised: Vec<bool> = tasks.join_all().await;
    assert_eq!(raised.iter().filter(|r| **r).count(), 1);
    assert_eq!(f.notifier.sent.lock().unwrap().len(), 1);
    let rows = f.alerts.alerts.lock().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.values().next().unwrap().count, 50);
}

#[tokio::test]
async fn z_score_alerts_are_keyed_by_metric_and_say_how_far_off() {
    let f = Fixture::default();
    let mut event = detected("d1", "2026-11-23T10:01:00Z", "2026-11-23T10:00:00Z", 65.0);
    event.data.kind = DetectionKind::ZScore;
    event.data.rule_id = None;
    event.data.rule = None;
    event.data.score = Some(7.25);
    f.run(&[record(0, event.to_vec())]).await;
    let sent = f.notifier.sent.lock().unwrap();
    assert_eq!(sent[0].data.rule_id, "z_score:temperature");
    assert!(
        sent[0].data.summary.contains("7.2 standard deviations"),
        "{}",
        sent[0].data.summary
    );
}

#[tokio::test]
async fn records_that_are_not_anomaly_events_are_counted_and_skipped() {
    let f = Fixture::default();
    let summary = f.run(&[record(0, b"{\"hello\":1}".to_vec())]).await;
    assert_eq!(summary.unreadable, 1);
}

#[tokio::test]
async fn an_aborted_rollout_raises_one_critical_alert_and_other_rollout_steps_none() {
    let f = Fixture::default();
    let golden = std::fs::read(format!(
        "{}/../../shared/events/tests/golden/iot.firmware.rollout.aborted.v1.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut progress: serde_json::Value = serde_json::from_slice(&golden).unwrap();
    progress["type"] = "iot.firmware.rollout.progress.v1".into();
    progress["data"]["kind"] = "progress".into();
    let records = [
        record(0, golden.clone()),
        record(1, serde_json::to_vec(&progress).unwrap()),
        // Redelivered: still one alert, counted twice.
        record(2, golden),
    ];
    let summary = f.run(&records).await;
    assert_eq!(
        (summary.raised, summary.deduplicated, summary.unreadable),
        (1, 1, 0)
    );
    let sent = f.notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let alert = &sent[0].data;
    assert_eq!(alert.device_id, "group:plant-a");
    assert_eq!(alert.rule_id, "firmware_rollout_aborted");
    assert_eq!(alert.severity, hub_events::Severity::Critical);
    assert!(
        alert.summary.contains("rollout-42") && alert.summary.contains("21.7%"),
        "{}",
        alert.summary
    );
}

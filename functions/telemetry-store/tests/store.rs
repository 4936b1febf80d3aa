//! The storage stage against in-memory stores.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hub_events::{DeviceContext, Envelope, NormalizedTelemetry};
use hub_runtime::stream::StreamRecord;
use telemetry_store::{
    memory::Memory,
    process::{sort_key, store},
};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

const T0: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

fn reading(device: &str, seq: u64, ts_ms: i64, temperature: f64) -> Vec<u8> {
    let data = NormalizedTelemetry {
        device_id: device.into(),
        seq: Some(seq),
        ts: at(ts_ms),
        device_ts: at(ts_ms),
        received_at: at(ts_ms + 40),
        clock_skew_ms: -40,
        clock_skew_corrected: false,
        metrics: BTreeMap::from([("temperature".into(), temperature), ("voltage".into(), 3.7)]),
        units: BTreeMap::from([
            ("temperature".into(), "celsius".into()),
            ("voltage".into(), "volt".into()),
        ]),
        status: "OK".into(),
        device: DeviceContext::default(),
    };
    Envelope::new("normalizer", device, at(ts_ms + 50), data)
        .simulated(true)
        .to_vec()
}

fn records(items: &[(&str, u64, i64, f64)]) -> Vec<StreamRecord> {
    items
        .iter()
        .enumerate()
        .map(|(i, (device, seq, ts, t))| {
            StreamRecord::new(
                format!("shardId-0:{}", 100 + i),
                reading(device, *seq, *ts, *t),
            )
        })
        .collect()
}

#[tokio::test]
async fn one_row_per_metric_and_reading() {
    let memory = Memory::default();
    let batch = records(&[
        ("a", 1, T0, 20.0),
        ("a", 2, T0 + 1000, 21.0),
        ("b", 1, T0, 30.0),
    ]);
    let summary = store(&memory, &batch, 30).await.unwrap();
    assert_eq!(summary.readings, 3);
    assert_eq!(summary.rows, 6);
    let rows = memory.rows.lock().unwrap();
    let row = &rows[&("a#temperature".to_owned(), sort_key(T0 + 1000, Some(2), ""))];
    assert_eq!(row.value, 21.0);
    assert_eq!(row.unit.as_deref(), Some("celsius"));
    assert!(row.simulated);
    assert_eq!(row.expires_at, (T0 + 1000) / 1000 + 30 * 86_400);
}

#[tokio::test]
async fn redelivery_changes_nothing() {
    let memory = Memory::default();
    let batch = records(&[("a", 1, T0, 20.0), ("a", 2, T0 + 1000, 21.0)]);
    store(&memory, &batch, 30).await.unwrap();
    let rows_before = memory.rows.lock().unwrap().clone();
    let objects_before = memory.objects.lock().unwrap().clone();
    let summary = store(&memory, &batch, 30).await.unwrap();
    assert_eq!(summary.latest_advanced, 0);
    assert_eq!(*memory.rows.lock().unwrap(), rows_before);
    assert_eq!(*memory.objects.lock().unwrap(), objects_before);
}

#[tokio::test]
async fn latest_only_moves_forward() {
    let memory = Memory::default();
    store(&memory, &records(&[("a", 5, T0 + 5000, 25.0)]), 30)
        .await
        .unwrap();
    // Late data: stored at its own time, but the latest value stays.
    let summary = store(&memory, &records(&[("a", 3, T0 + 3000, 23.0)]), 30)
        .await
        .unwrap();
    assert_eq!(summary.latest_advanced, 0);
    assert_eq!(memory.latest.lock().unwrap()["a"].ts_ms, T0 + 5000);
    assert!(memory
        .rows
        .lock()
        .unwrap()
        .contains_key(&("a#temperature".to_owned(), sort_key(T0 + 3000, Some(3), ""))));
    // Within one batch the newest wins whatever the order.
    store(
        &memory,
        &records(&[("a", 9, T0 + 9000, 29.0), ("a", 7, T0 + 7000, 27.0)]),
        30,
    )
    .await
    .unwrap();
    let latest = &memory.latest.lock().unwrap()["a"];
    assert_eq!(
        (latest.ts_ms, latest.metrics["temperature"]),
        (T0 + 9000, 29.0)
    );
}

#[tokio::test]
async fn archive_batches_by_device_and_day() {
    let memory = Memory::default();
    let next_day = T0 + 86_400_000;
    let batch = records(&[
        ("a", 1, T0, 20.0),
        ("a", 2, T0 + 1, 20.0),
        ("b", 1, T0, 1.0),
        ("a", 3, next_day, 1.0),
    ]);
    let summary = store(&memory, &batch, 30).await.unwrap();
    assert_eq!(summary.archive_objects, 3);
    let objects = memory.objects.lock().unwrap();
    let keys: Vec<&String> = objects.keys().collect();
    assert_eq!(
        keys,
        [
            "a/2026/11/23/shardId-0-100.jsonl",
            "a/2026/11/24/shardId-0-103.jsonl",
            "b/2026/11/23/shardId-0-102.jsonl"
        ]
    );
    let first = &objects["a/2026/11/23/shardId-0-100.jsonl"];
    let lines: Vec<&[u8]> = first
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], batch[0].data.as_slice());
}

#[tokio::test]
async fn undecodable_records_are_dead_lettered_not_dropped() {
    let memory = Memory::default();
    let mut batch = records(&[("a", 1, T0, 20.0)]);
    batch.push(StreamRecord::new(
        "shardId-0:7",
        b"{\"type\":\"something else\"}".to_vec(),
    ));
    let summary = store(&memory, &batch, 30).await.unwrap();
    assert_eq!((summary.readings, summary.dead_lettered), (1, 1));
    let letters = memory.dead_letters.lock().unwrap();
    assert_eq!(letters[0].reason, "invalid_event");
    assert_eq!(letters[0].position, "shardId-0:7");
}

#[tokio::test]
async fn a_failed_write_fails_the_batch_and_the_retry_completes_it() {
    let memory = Memory::default();
    *memory.fail_archive.lock().unwrap() = true;
    let batch = records(&[("a", 1, T0, 20.0)]);
    assert!(store(&memory, &batch, 30).await.is_err());
    assert!(
        memory.rows.lock().unwrap().is_empty(),
        "nothing is written past a failed archive"
    );
    store(&memory, &batch, 30).await.unwrap();
    assert_eq!(memory.rows.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn two_readings_at_the_same_millisecond_are_two_rows() {
    let memory = Memory::default();
    let summary = store(
        &memory,
        &records(&[("a", 7, T0, 20.0), ("a", 9, T0, 22.0)]),
        30,
    )
    .await
    .unwrap();
    assert_eq!(summary.rows, 4);
    assert_eq!(memory.rows.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn v1_readings_in_the_same_millisecond_are_two_rows() {
    let memory = Memory::default();
    let mut batch = records(&[("old", 1, T0, 20.0), ("old", 2, T0, 21.0)]);
    for record in &mut batch {
        let mut event = Envelope::<NormalizedTelemetry>::from_slice(&record.data).unwrap();
        event.data.seq = None;
        record.data = event.to_vec();
    }
    let summary = store(&memory, &batch, 30).await.unwrap();
    assert_eq!(summary.rows, 4);
    // Redelivered: the same rows, no more.
    store(&memory, &batch, 30).await.unwrap();
    assert_eq!(memory.rows.lock().unwrap().len(), 4);
}

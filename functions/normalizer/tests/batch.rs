//! The normalizer's batch logic against in-memory ports.

use base64::Engine as _;
use hub_events::{DeviceContext, Envelope, IngestChannel, NormalizedTelemetry, RawTelemetry};
use hub_runtime::stream::StreamRecord;
use normalizer::{
    memory::Memory,
    ports::DeviceRecord,
    process::{process, Config, Ports},
};
use serde_json::json;

const RECEIVED_MS: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

fn raw(device: &str, payload: &[u8], position: &str) -> StreamRecord {
    let event = Envelope::new(
        "iot-core/telemetry-rule",
        device,
        chrono::DateTime::from_timestamp_millis(RECEIVED_MS).unwrap(),
        RawTelemetry {
            payload: base64::engine::general_purpose::STANDARD.encode(payload),
            topic: format!("devices/{device}/telemetry"),
            client_id: Some(device.to_owned()),
            received_at_ms: RECEIVED_MS,
            channel: IngestChannel::Mqtt,
        },
    );
    StreamRecord::new(position, event.to_vec())
}

fn reading(seq: u64, temperature: f64) -> Vec<u8> {
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": "2026-11-23T09:59:59Z",
           "metrics": {"temperature": temperature}, "status": "OK"})
    .to_string()
    .into_bytes()
}

async fn run(
    memory: &Memory,
    config: &Config,
    records: &[StreamRecord],
) -> normalizer::process::BatchResult {
    let ports = Ports {
        registry: memory,
        states: memory,
        dedup: memory,
        outputs: memory,
    };
    process(&ports, config, records).await
}

#[tokio::test]
async fn valid_records_are_emitted_enriched_and_partitioned_by_device() {
    let memory = Memory::default();
    memory.registry.lock().unwrap().insert(
        "d1".into(),
        DeviceRecord {
            quarantined: false,
            context: DeviceContext {
                device_type: Some("env-sensor".into()),
                group: Some("plant-a".into()),
                ..Default::default()
            },
        },
    );
    let result = run(
        &memory,
        &Config::default(),
        &[raw("d1", &reading(1, 20.5), "s:1")],
    )
    .await;
    assert!(result.failed.is_empty());
    assert_eq!(result.summary.stored, 1);
    let emitted = memory.emitted.lock().unwrap();
    let (key, bytes) = &emitted[0];
    assert_eq!(key, "d1");
    let event = Envelope::<NormalizedTelemetry>::from_slice(bytes).unwrap();
    assert_eq!(event.data.metrics["temperature"], 20.5);
    assert_eq!(event.data.device.group.as_deref(), Some("plant-a"));
    assert_eq!(event.data.clock_skew_ms, -1000);
}

#[tokio::test]
async fn duplicates_make_no_second_event_and_a_redelivered_record_is_not_a_duplicate_of_itself() {
    let memory = Memory::default();
    let config = Config::default();
    let first = raw("d1", &reading(7, 20.0), "s:1");
    let again = raw("d1", &reading(7, 20.0), "s:2"); // the device resent seq 7
    let result = run(&memory, &config, &[first.clone(), again.clone()]).await;
    assert_eq!((result.summary.stored, result.summary.deduplicated), (1, 1));
    // A later batch with the same resend: still a duplicate.
    let result = run(&memory, &config, &[again]).await;
    assert_eq!(result.summary.deduplicated, 1);
    // The same stream record redelivered (a retried batch) is not a duplicate of itself:
    // it is accounted as stored again, and not emitted again.
    let result = run(&memory, &config, &[first]).await;
    assert_eq!(result.summary.stored, 1);
    assert_eq!(memory.emitted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_records_become_dead_letters_with_reason_position_and_original_bytes() {
    let memory = Memory::default();
    let records = [
        raw("d1", b"{broken", "s:1"),
        raw(
            "d1",
            br#"{"v":2,"ts":"2026-11-23T10:00:00Z","metrics":{"humidity":140}}"#,
            "s:2",
        ),
        StreamRecord::new("s:3", b"not an event".to_vec()),
    ];
    let result = run(&memory, &Config::default(), &records).await;
    assert_eq!(result.summary.dead_lettered_total(), 3);
    assert!(result.summary.balances());
    let letters = memory.letters.lock().unwrap();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason).collect();
    assert_eq!(reasons, ["malformed_json", "out_of_range", "not_raw_event"]);
    assert_eq!(letters[2].position, "s:3");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&letters[2].original)
            .unwrap(),
        b"not an event"
    );
    assert!(letters[1].detail.contains("humidity"));
}

#[tokio::test]
async fn quarantined_devices_are_dropped_and_counted() {
    let memory = Memory::default();
    memory.registry.lock().unwrap().insert(
        "bad".into(),
        DeviceRecord {
            quarantined: true,
            ..Default::default()
        },
    );
    let result = run(
        &memory,
        &Config::default(),
        &[
            raw("bad", &reading(1, 1.0), "s:1"),
            raw("ok", &reading(1, 1.0), "s:2"),
        ],
    )
    .await;
    assert_eq!(result.summary.dropped["quarantined"], 1);
    assert_eq!(result.summary.stored, 1);
    assert!(result.summary.balances());
}

#[tokio::test]
async fn excess_over_the_rate_limit_is_dead_lettered() {
    let memory = Memory::default();
    let config = Config {
        rate_limit_per_minute: 3,
        ..Config::default()
    };
    let records: Vec<StreamRecord> = (1..=5)
        .map(|i| raw("chatty", &reading(i, 1.0), &format!("s:{i}")))
        .collect();
    let result = run(&memory, &config, &records).await;
    assert_eq!(result.summary.stored, 3);
    assert_eq!(result.summary.dead_lettered["rate_limited"], 2);
    // The window carries over to the next batch in the same minute.
    let result = run(&memory, &config, &[raw("chatty", &reading(6, 1.0), "s:6")]).await;
    assert_eq!(result.summary.dead_lettered["rate_limited"], 1);
}

#[tokio::test]
async fn sequence_gaps_are_recorded_and_late_data_fills_them() {
    let memory = Memory::default();
    let records = [
        raw("d", &reading(1, 1.0), "s:1"),
        raw("d", &reading(5, 1.0), "s:2"),
        raw("d", &reading(3, 1.0), "s:3"),
    ];
    let result = run(&memory, &Config::default(), &records).await;
    // Three detected (2, 3, 4); seq 3 then arrived late, so two are still missing.
    assert_eq!(result.summary.sequence_gaps, 3);
    let state = memory.states.lock().unwrap()["d"].clone();
    assert_eq!((state.last_seq, state.gaps), (Some(5), 2));
}

#[tokio::test]
async fn heartbeats_are_counted_not_stored() {
    let memory = Memory::default();
    let heartbeat = br#"{"v":2,"seq":9,"msg_type":"heartbeat","ts":"2026-11-23T10:00:00Z"}"#;
    let result = run(&memory, &Config::default(), &[raw("d", heartbeat, "s:1")]).await;
    assert_eq!(result.summary.dropped["heartbeat"], 1);
    assert!(memory.emitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn skewed_clocks_are_corrected_and_counted() {
    let memory = Memory::default();
    let future =
        json!({"v": 2, "seq": 1, "ts": "2027-01-01T00:00:00Z", "metrics": {"temperature": 1.0}});
    let result = run(
        &memory,
        &Config::default(),
        &[raw("d", future.to_string().as_bytes(), "s:1")],
    )
    .await;
    assert_eq!(result.summary.clock_skew_corrected, 1);
    let emitted = memory.emitted.lock().unwrap();
    let event = Envelope::<NormalizedTelemetry>::from_slice(&emitted[0].1).unwrap();
    assert!(event.data.clock_skew_corrected);
    assert_eq!(event.data.ts.timestamp_millis(), RECEIVED_MS);
}

#[tokio::test]
async fn a_transient_failure_fails_the_whole_batch_and_the_retry_balances() {
    let memory = Memory::default();
    let records = [
        raw("d", &reading(1, 1.0), "s:1"),
        raw("d", &reading(2, 1.0), "s:2"),
    ];
    memory.fail_emit(true);
    let result = run(&memory, &Config::default(), &records).await;
    assert_eq!(result.failed, ["s:1", "s:2"]);
    assert!(result.error.is_some());
    assert!(
        memory.claims.lock().unwrap().is_empty(),
        "nothing claimed before emitting"
    );
    memory.fail_emit(false);
    let result = run(&memory, &Config::default(), &records).await;
    assert!(result.failed.is_empty());
    assert_eq!(result.summary.stored, 2);
}

#[tokio::test]
async fn extreme_sequence_numbers_do_not_overflow() {
    let memory = Memory::default();
    let records = [
        raw("d", &reading(u64::MAX, 1.0), "s:1"),
        raw("d", &reading(1, 1.0), "s:2"),
        raw("d", &reading(u64::MAX - 1, 1.0), "s:3"),
    ];
    let result = run(&memory, &Config::default(), &records).await;
    assert_eq!(result.summary.stored, 3);
    assert!(result.summary.balances());
}

#[tokio::test]
async fn a_batch_retried_after_its_emit_does_not_emit_twice() {
    use std::sync::atomic::Ordering;
    let memory = Memory::default();
    let records = [
        raw("d", &reading(1, 1.0), "s:1"),
        raw("d", &reading(2, 1.0), "s:2"),
    ];
    memory.fail_save.store(true, Ordering::SeqCst);
    let result = run(&memory, &Config::default(), &records).await;
    assert!(
        result.error.is_some(),
        "the state write failed, so the batch fails"
    );
    assert_eq!(
        memory.emitted.lock().unwrap().len(),
        2,
        "the events went out before it"
    );
    memory.fail_save.store(false, Ordering::SeqCst);
    let result = run(&memory, &Config::default(), &records).await;
    assert_eq!(
        result.summary.stored, 2,
        "the retry accounts for both records"
    );
    assert_eq!(
        memory.emitted.lock().unwrap().len(),
        2,
        "and emits neither again"
    );
    assert_eq!(memory.states.lock().unwrap()["d"].last_seq, Some(2));
}

#[tokio::test]
async fn event_ids_follow_the_raw_record() {
    let first = Memory::default();
    let second = Memory::default();
    let records = [raw("d", &reading(1, 1.0), "shardId-0:77")];
    run(&first, &Config::default(), &records).await;
    run(&second, &Config::default(), &records).await;
    let id = |m: &Memory| {
        let (_, bytes) = m.emitted.lock().unwrap()[0].clone();
        Envelope::<NormalizedTelemetry>::from_slice(&bytes)
            .unwrap()
            .id
    };
    assert_eq!(id(&first), id(&second));
    assert_eq!(id(&first), normalizer::process::event_id("shardId-0:77"));
}

#[tokio::test]
async fn a_rate_limited_record_does_not_claim_its_seq() {
    let memory = Memory::default();
    let config = Config {
        rate_limit_per_minute: 1,
        ..Config::default()
    };
    let records = [
        raw("d", &reading(1, 1.0), "s:1"),
        raw("d", &reading(2, 1.0), "s:2"),
    ];
    let result = run(&memory, &config, &records).await;
    assert_eq!(result.summary.dead_lettered["rate_limited"], 1);
    assert!(
        !memory.claims.lock().unwrap().contains_key("d#2"),
        "replayable later"
    );
}

fn reading_at(seq: u64, ts: &str) -> Vec<u8> {
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": ts,
           "metrics": {"temperature": 21.0}, "status": "OK"})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_device_that_restarts_its_counter_keeps_its_new_readings() {
    let memory = Memory::default();
    let config = Config::default();
    let before: Vec<_> = (1..=3)
        .map(|seq| {
            raw(
                "d",
                &reading_at(seq, &format!("2026-11-23T09:5{seq}:00Z")),
                &format!("s:{seq}"),
            )
        })
        .collect();
    let result = run(&memory, &config, &before).await;
    assert_eq!(result.summary.stored, 3);
    // Rebooted: seq starts again at 1, with later device times.
    let after: Vec<_> = (1..=3)
        .map(|seq| {
            raw(
                "d",
                &reading_at(seq, &format!("2026-11-23T09:59:0{seq}Z")),
                &format!("s:{}", 10 + seq),
            )
        })
        .collect();
    let result = run(&memory, &config, &after).await;
    assert_eq!(
        (result.summary.stored, result.summary.deduplicated),
        (3, 0),
        "{:?}",
        result.summary
    );
    assert_eq!(result.summary.sequence_resets, 1);
    assert_eq!(result.summary.sequence_gaps, 0);
    assert_eq!(memory.emitted.lock().unwrap().len(), 6);
    let state = memory.states.lock().unwrap()["d"].clone();
    assert_eq!(state.last_seq, Some(3));

    // Positive control: a redelivery of a post-reboot reading is still one reading.
    let again = raw("d", &reading_at(2, "2026-11-23T09:59:02Z"), "s:99");
    let result = run(&memory, &config, &[again]).await;
    assert_eq!(result.summary.deduplicated, 1);
    assert_eq!(result.summary.sequence_resets, 0);
    assert_eq!(memory.emitted.lock().unwrap().len(), 6);
}

#[tokio::test]
async fn a_redelivered_message_without_a_seq_is_stored_once() {
    let memory = Memory::default();
    let config = Config::default();
    let v1 = |temperature: f64| {
        json!({"ts": "2026-11-23T09:59:59Z", "temperature": temperature, "status": "OK"})
            .to_string()
            .into_bytes()
    };
    // The broker resent it after the bridge restarted: a second stream record.
    let first = raw("legacy", &v1(21.5), "shardId-1:100");
    let resent = raw("legacy", &v1(21.5), "shardId-1:160");
    let other = raw("legacy", &v1(22.0), "shardId-1:161");
    let result = run(&memory, &config, std::slice::from_ref(&first)).await;
    assert_eq!(result.summary.stored, 1);
    let result = run(&memory, &config, &[resent.clone(), other]).await;
    assert_eq!(
        (result.summary.stored, result.summary.deduplicated),
        (1, 1),
        "{:?}",
        result.summary
    );
    // In one batch too.
    let fresh = Memory::default();
    let result = run(&fresh, &config, &[first.clone(), resent]).await;
    assert_eq!((result.summary.stored, result.summary.deduplicated), (1, 1));
    // And the first record redelivered (a retried batch) is still not its own duplicate.
    let result = run(&memory, &config, &[first]).await;
    assert_eq!((result.summary.stored, result.summary.deduplicated), (1, 0));
    assert_eq!(memory.emitted.lock().unwrap().len(), 2);
}

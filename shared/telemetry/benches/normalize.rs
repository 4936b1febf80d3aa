//! Throughput of the normalizer's pure path: a Kinesis event of 500 raw telemetry records
//! is deserialized, and every record is unpacked, parsed and validated, normalized and
//! serialized, as the normalizer function does minus its I/O. Figures, not a timed test:
//!
//!   CARGO_TARGET_DIR=target/bench cargo bench -p hub-telemetry --bench normalize
//!
//! Criterion runs on one thread, so records/s is per core.

use std::hint::black_box;

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hub_events::{DeviceContext, Envelope, IngestChannel, RawTelemetry};
use hub_telemetry::{normalize, payload, unpack_raw, MessageKind, SkewPolicy};
use serde_json::json;

const RECORDS: usize = 500;
const DEVICES: usize = 50;
const RECEIVED_MS: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

/// A v2 telemetry message with 2-4 metrics, some in device units that get converted.
fn v2_telemetry(i: usize, seq: u64) -> Vec<u8> {
    let t = (i % 17) as f64;
    let metrics = match i % 3 {
        0 => json!({"temperature": 20.0 + t * 0.25, "voltage": 3.3 + t * 0.01}),
        1 => json!({"temp_f": 68.0 + t, "humidity": 40.0 + t, "batteryVoltage": 3.7 - t * 0.01}),
        _ => json!({"voltage_mv": 3300.0 + t, "current": 0.5 + t * 0.1,
                    "power_kw": 1.2 + t * 0.05, "power_factor": 0.95}),
    };
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": device_ts(i),
           "metrics": metrics, "status": "OK"})
    .to_string()
    .into_bytes()
}

/// The device clock: a second or two behind the hub, and now and then far off.
fn device_ts(i: usize) -> String {
    let offset_ms = if i % 50 == 7 {
        3_600_000
    } else {
        -(1_000 + (i % 900) as i64)
    };
    chrono::DateTime::from_timestamp_millis(RECEIVED_MS + offset_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn payload_for(i: usize, seq: u64) -> Vec<u8> {
    let ts = device_ts(i);
    match i % 20 {
        // 70%: v2 telemetry.
        0..=13 => v2_telemetry(i, seq),
        // 10%: bare v1 from older devices.
        14 | 15 => json!({"ts": ts, "temperature": 21.5, "voltage": 230.1, "status": "OK"})
            .to_string()
            .into_bytes(),
        // 10%: heartbeats.
        16 | 17 => json!({"v": 2, "seq": seq, "msg_type": "heartbeat", "ts": ts})
            .to_string()
            .into_bytes(),
        // 5%: malformed (a truncated write).
        18 => br#"{"v":2,"seq":1,"ts":"2026-11-23T09:59:59Z","metrics":{"temperature":2"#.to_vec(),
        // 5%: well-formed JSON with wrong types.
        _ => json!({"v": 2, "seq": seq, "ts": ts, "metrics": {"temperature": "21.5"}})
            .to_string()
            .into_bytes(),
    }
}

/// One `iot.telemetry.raw.v1` record as the IoT topic rule writes it.
fn raw_record(device: &str, payload: &[u8]) -> Vec<u8> {
    Envelope::new(
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
    )
    .to_vec()
}

/// The Lambda event JSON, shaped like tests/fixtures/kinesis-event.json.
fn kinesis_event_json() -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..RECORDS)
        .map(|i| {
            let device = format!("sensor-{:04}", i % DEVICES);
            let seq = (i / DEVICES) as u64 + 1;
            let data = raw_record(&device, &payload_for(i, seq));
            let sequence_number =
                format!("4954511524349098501828006771497314458218006259324420{i:04}");
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": device,
                    "sequenceNumber": sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1_795_428_000.25 + i as f64 * 0.001,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence_number}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/iot-hub-RawStream",
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    normalized: usize,
    heartbeats: usize,
    rejected: usize,
    bytes_out: usize,
}

/// What the normalizer does to a batch, minus dedup, rate limits and I/O.
fn process(event_json: &[u8], policy: &SkewPolicy, context: &DeviceContext) -> Counts {
    let event: KinesisEvent = serde_json::from_slice(event_json).expect("a Kinesis event");
    let mut counts = Counts::default();
    for record in &event.records {
        let Ok(raw) = unpack_raw(&record.kinesis.data.0) else {
            counts.rejected += 1;
            continue;
        };
        let message = match payload::parse(&raw.payload) {
            Ok(message) => message,
            Err(_) => {
                counts.rejected += 1;
                continue;
            }
        };
        if message.kind == MessageKind::Heartbeat {
            counts.heartbeats += 1;
            continue;
        }
        let (normalized, _timing) = normalize(&raw, &message, policy, context.clone());
        counts.bytes_out += normalized.to_vec().len();
        counts.normalized += 1;
    }
    counts
}

fn batch(c: &mut Criterion) {
    let event_json = kinesis_event_json();
    let policy = SkewPolicy::default();
    let context = DeviceContext {
        device_type: Some("env-sensor".into()),
        group: Some("plant-a".into()),
        location: Some("hall-3".into()),
        firmware_version: Some("2.4.1".into()),
    };
    let counts = process(&event_json, &policy, &context);
    assert_eq!(
        (counts.normalized, counts.heartbeats, counts.rejected),
        (400, 50, 50),
        "the mix is 80% stored, 10% heartbeats, 10% rejected"
    );
    eprintln!(
        "batch: {RECORDS} records, {} KiB of event JSON, {} KiB of normalized events out",
        event_json.len() / 1024,
        counts.bytes_out / 1024
    );

    let mut group = c.benchmark_group("kinesis_batch");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode_validate_normalize_500", |b| {
        b.iter(|| process(black_box(&event_json), &policy, &context))
    });
    group.finish();
}

fn parse_one(c: &mut Criterion) {
    let typical = v2_telemetry(0, 1042);
    payload::parse(&typical).expect("a valid payload");
    let mut group = c.benchmark_group("payload_parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("v2_two_metrics", |b| {
        b.iter(|| payload::parse(black_box(&typical)))
    });
    // With unit conversion and name canonicalization on every metric.
    let converted = v2_telemetry(1, 1042);
    group.bench_function("v2_three_metrics_converted", |b| {
        b.iter(|| payload::parse(black_box(&converted)))
    });
    group.finish();
}

criterion_group!(benches, batch, parse_one);
criterion_main!(benches);

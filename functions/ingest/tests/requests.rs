//! The ingest handler against in-memory keys and stream: what a device's request gets
//! back, and what reaches the raw stream.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use hub_credentials::{ApiKey, StoredKey};
use hub_events::{Envelope, IngestChannel, RawTelemetry};
use ingest::{process::MAX_BODY_BYTES, Ingest, IngestRequest, KeyStore, RawSink, Reply};
use serde_json::json;

#[derive(Default)]
struct Keys(Vec<StoredKey>);

impl KeyStore for Keys {
    async fn get(&self, device_id: &str, key_id: &str) -> Result<Option<StoredKey>, String> {
        Ok(self
            .0
            .iter()
            .find(|k| k.device_id == device_id && k.key_id == key_id)
            .cloned())
    }
}

#[derive(Default)]
struct Stream {
    records: Mutex<Vec<(String, Vec<u8>)>>,
    down: bool,
}

impl RawSink for Stream {
    async fn put(&self, device_id: &str, records: Vec<Vec<u8>>) -> Result<(), String> {
        if self.down {
            return Err("stream unavailable".into());
        }
        let mut stored = self.records.lock().unwrap();
        stored.extend(records.into_iter().map(|r| (device_id.to_owned(), r)));
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-23T10:00:01Z".parse().unwrap()
}

fn setup() -> (Ingest<Keys, Stream>, String) {
    let issued = ApiKey::issue("sensor-0001", now()).unwrap();
    let ingest = Ingest {
        keys: Keys(vec![issued.stored]),
        sink: Stream::default(),
    };
    (ingest, issued.key)
}

async fn post(ingest: &Ingest<Keys, Stream>, key: Option<&str>, body: &[u8]) -> Reply {
    ingest
        .handle(IngestRequest {
            api_key: key,
            body,
            received_at: now(),
        })
        .await
}

const V2: &str = r#"{"v":2,"seq":7,"msg_type":"telemetry","ts":"2026-11-23T10:00:00Z","metrics":{"temperature":21.5},"status":"OK"}"#;
const V1: &str = r#"{"ts":"2026-11-23T10:00:00Z","temperature":21.5,"voltage":3.3,"status":"OK"}"#;

fn written(ingest: &Ingest<Keys, Stream>) -> Vec<(String, Envelope<RawTelemetry>)> {
    ingest
        .sink
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|(key, bytes)| (key.clone(), Envelope::from_slice(bytes).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_message_goes_onto_the_raw_stream_as_the_rule_would_put_it() {
    let (ingest, key) = setup();
    let reply = post(&ingest, Some(&key), V2.as_bytes()).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.body, json!({"accepted": 1}));

    let written = written(&ingest);
    assert_eq!(written.len(), 1);
    let (partition_key, event) = &written[0];
    assert_eq!(partition_key, "sensor-0001");
    assert_eq!(event.subject, "sensor-0001");
    assert_eq!(event.data.channel, IngestChannel::Http);
    assert_eq!(event.data.received_at_ms, now().timestamp_millis());
    // The normalizer reads it exactly as it reads an MQTT message, original bytes intact.
    let raw = hub_telemetry::unpack_raw(&ingest.sink.records.lock().unwrap()[0].1).unwrap();
    assert_eq!(raw.device_id, "sensor-0001");
    assert_eq!(raw.payload, V2.as_bytes());
}

#[tokio::test]
async fn an_array_keeps_each_message_byte_for_byte() {
    let (ingest, key) = setup();
    let body = format!("[ {V2} ,\n{V1}]");
    let reply = post(&ingest, Some(&key), body.as_bytes()).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.accepted, 2);
    let payloads: Vec<Vec<u8>> = ingest
        .sink
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|(_, bytes)| hub_telemetry::unpack_raw(bytes).unwrap().payload)
        .collect();
    assert_eq!(payloads, [V2.as_bytes(), V1.as_bytes()]);
}

#[tokio::test]
async fn keys_that_do_not_authenticate_get_401_and_write_nothing() {
    let (ingest, key) = setup();
    let other = ApiKey::issue("sensor-0001", now()).unwrap().key;
    let (device_and_id, _) = key.rsplit_once('.').unwrap();
    let (_, other_secret) = other.rsplit_once('.').unwrap();
    let wrong_secret = format!("{device_and_id}.{other_secret}");
    let other_device = key.replacen("sensor-0001", "sensor-0002", 1);
    for presented in [
        None,
        Some("not-a-key"),
        Some(other.as_str()),
        Some(wrong_secret.as_str()),
        Some(other_device.as_str()),
    ] {
        let reply = post(&ingest, presented, V2.as_bytes()).await;
        assert_eq!(reply.status, 401, "{presented:?}: {reply:?}");
        assert_eq!(reply.body["error"], "unauthorized");
    }
    assert!(written(&ingest).is_empty());
}

#[tokio::test]
async fn revoked_and_expired_keys_get_401() {
    let issued = ApiKey::issue("sensor-0001", now()).unwrap();
    for stored in [
        StoredKey {
            revoked: true,
            ..issued.stored.clone()
        },
        StoredKey {
            expires_at: Some(now()),
            ..issued.stored.clone()
        },
    ] {
        let ingest = Ingest {
            keys: Keys(vec![stored]),
            sink: Stream::default(),
        };
        let reply = post(&ingest, Some(&issued.key), V2.as_bytes()).await;
        assert_eq!(reply.status, 401);
        assert!(written(&ingest).is_empty());
    }
}

#[tokio::test]
async fn an_invalid_message_is_named_by_index_and_reason_and_nothing_is_written() {
    let (ingest, key) = setup();
    let cases = [
        (format!("[{V2}, {{\"v\":2,\"seq\":8,\"msg_type\":\"telemetry\",\"metrics\":{{\"temperature\":1}}}}]"), 1, "missing_field"),
        (format!("[{V1}, {V2}, {{\"ts\":\"2026-11-23T10:00:00Z\",\"temperature\":\"hot\"}}]"), 2, "wrong_type"),
        ("{\"ts\":".to_owned(), 0, "malformed_json"),
        ("[1e999]".to_owned(), 0, "malformed_json"),
        ("\"just a string\"".to_owned(), 0, "not_an_object"),
        (r#"{"v":2,"seq":1,"msg_type":"telemetry","ts":"2026-11-23T10:00:00Z","metrics":{"voltage":1e300}}"#.to_owned(), 0, "out_of_range"),
    ];
    for (body, index, reason) in cases {
        let reply = post(&ingest, Some(&key), body.as_bytes()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.body["index"], index, "{body}");
        assert_eq!(reply.body["reason"], reason, "{body}");
        assert!(reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert!(written(&ingest).is_empty());
}

#[tokio::test]
async fn bodies_that_are_not_messages_get_400_or_413() {
    let (ingest, key) = setup();
    let too_many = format!("[{}]", vec![V2; 501].join(","));
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    for (body, status, error) in [
        ("".as_bytes(), 400, "invalid_body"),
        ("  \n".as_bytes(), 400, "invalid_body"),
        ("[]".as_bytes(), 400, "invalid_body"),
        ("[{}, ".as_bytes(), 400, "invalid_body"),
        (too_many.as_bytes(), 413, "too_many_messages"),
        (huge.as_slice(), 413, "payload_too_large"),
    ] {
        let reply = post(&ingest, Some(&key), body).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(reply.body["error"], error);
    }
    assert!(written(&ingest).is_empty());
}

#[tokio::test]
async fn a_stream_failure_is_503_so_the_device_retries() {
    let issued = ApiKey::issue("sensor-0001", now()).unwrap();
    let ingest = Ingest {
        keys: Keys(vec![issued.stored]),
        sink: Stream {
            down: true,
            ..Stream::default()
        },
    };
    let reply = post(&ingest, Some(&issued.key), V2.as_bytes()).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body["error"], "unavailable");
}

#[tokio::test]
async fn an_api_gateway_request_is_answered_with_json() {
    let (ingest, key) = setup();
    let fixture = include_str!("../../../tests/fixtures/apigw-v2-telemetry-request.json")
        .replace("KEY_PLACEHOLDER", &key);
    let request = lambda_http::request::from_str(&fixture).unwrap();
    let response = ingest.handle_http(request).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body, json!({"accepted": 1}));
    let written = written(&ingest);
    assert_eq!(written[0].0, "sensor-0001");
}

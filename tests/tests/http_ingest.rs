//! HTTP ingest on the local stack: requests go through the emulator's API Gateway to the
//! ingest Lambda, accepted messages take the same path as MQTT ones (normalizer, dedup,
//! hot store), and requests without a valid key change nothing.

use std::time::Duration;

use chrono::Utc;
use hub_credentials::dynamodb::DynamoApiKeys;
use hub_e2e::{accounting, http_device::HttpDevice, unique, Stack};
use serde_json::{json, Value};

fn reading(seq: u64, temperature: f64) -> Value {
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": Utc::now().to_rfc3339(),
           "metrics": {"temperature": temperature, "voltage": 3.3}, "status": "OK"})
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_post_telemetry_with_their_api_key() {
    let stack = Stack::from_env().await.unwrap();
    let device = HttpDevice::register(&stack, &unique("http"), "env-sensor")
        .await
        .unwrap();
    let since = accounting::now_ms();

    // Refused before anything is written.
    let (device_part, _) = device.key.rsplit_once('.').unwrap();
    let wrong_secret = format!("{device_part}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    for key in [None, Some("garbage"), Some(wrong_secret.as_str())] {
        let (status, body) = device
            .post_with_key(key, reading(1, 20.0).to_string())
            .await
            .unwrap();
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("unauthorized")),
            "{key:?}: {body}"
        );
    }
    let (status, body) = device
        .post(r#"[{"v":2,"seq":1,"msg_type":"telemetry","metrics":{}}]"#)
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "missing_field");
    assert_eq!(body["index"], 0);
    let (status, body) = device.post("{\"ts\": ").await.unwrap();
    assert_eq!(
        (status, &body["reason"]),
        (400, &json!("malformed_json")),
        "{body}"
    );

    // A batch of five, then the third again, as a device retrying after a timeout would.
    let batch: Vec<Value> = (1..=5).map(|seq| reading(seq, 20.0 + seq as f64)).collect();
    let (status, body) = device
        .post(serde_json::to_vec(&batch).unwrap())
        .await
        .unwrap();
    assert_eq!((status, body), (202, json!({"accepted": 5})));
    let (status, _) = device.post(batch[2].to_string()).await.unwrap();
    assert_eq!(status, 202);
    // A legacy v1 object over HTTP too.
    let v1 =
        json!({"ts": Utc::now().to_rfc3339(), "temperature": 19.5, "voltage": 3.1, "status": "OK"});
    let (status, _) = device.post(v1.to_string()).await.unwrap();
    assert_eq!(status, 202);

    // Revoked: refused at once (keys are not cached).
    let (_, key_id_and_secret) = device.key.split_once('.').unwrap();
    let (key_id, _) = key_id_and_secret.split_once('.').unwrap();
    DynamoApiKeys {
        client: aws_sdk_dynamodb::Client::new(&stack.aws.sdk),
        table: stack.output("DeviceCredentialsTableName").to_owned(),
    }
    .revoke(&device.id, key_id, Utc::now())
    .await
    .unwrap();
    let (status, _) = device.post(reading(6, 20.0).to_string()).await.unwrap();
    assert_eq!(status, 401);

    let counts = accounting::wait_for(&stack, since, 7, Duration::from_secs(120))
        .await
        .unwrap();
    println!("HTTP ingest counted {counts:#?}");
    assert_eq!(counts.received, 7);
    assert_eq!(counts.stored, 6);
    assert_eq!(counts.deduplicated, 1);
    assert_eq!(counts.dead_lettered_total(), 0);
    // Two metrics a reading, each one row.
    assert_eq!(
        accounting::hot_store_rows(&stack, &device.id)
            .await
            .unwrap(),
        12
    );
}

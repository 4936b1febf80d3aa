//! HTTP ingest on the local stack: requests go through the emulator's API Gateway to the
//! ingest Lambda, accepted messages take the same path as MQTT ones (normalizer, dedup,
//! hot store), and requests without a valid key change nothing.

use std::time::Duration;

use chrono::Utc;
use hub_credentials::{dynamodb::DynamoApiKeys, ApiKey};
use hub_e2e::{accounting, unique, Stack};
use serde_json::{json, Value};

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn post(&self, key: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut request = self.http.post(&self.url).body(body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "status {status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, body)
    }
}

fn reading(seq: u64, temperature: f64) -> Value {
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": Utc::now().to_rfc3339(),
           "metrics": {"temperature": temperature, "voltage": 3.3}, "status": "OK"})
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_post_telemetry_with_their_api_key() {
    let stack = Stack::from_env().await.unwrap();
    let keys = DynamoApiKeys {
        client: aws_sdk_dynamodb::Client::new(&stack.aws.sdk),
        table: stack.output("DeviceCredentialsTableName").to_owned(),
    };
    let device = unique("http");
    let issued = ApiKey::issue(&device, Utc::now()).unwrap();
    keys.put(&issued.stored).await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        url: format!("{}/v1/telemetry", stack.api_url),
    };
    let since = accounting::now_ms();

    // Refused before anything is written.
    let (device_part, _) = issued.key.rsplit_once('.').unwrap();
    let wrong_secret = format!("{device_part}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    for key in [None, Some("garbage"), Some(wrong_secret.as_str())] {
        let (status, body) = api.post(key, reading(1, 20.0).to_string()).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("unauthorized")),
            "{key:?}: {body}"
        );
    }
    let (status, body) = api
        .post(
            Some(&issued.key),
            r#"[{"v":2,"seq":1,"msg_type":"telemetry","metrics":{}}]"#,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "missing_field");
    assert_eq!(body["index"], 0);
    let (status, body) = api.post(Some(&issued.key), "{\"ts\": ").await;
    assert_eq!(
        (status, &body["reason"]),
        (400, &json!("malformed_json")),
        "{body}"
    );

    // A batch of five, then the third again, as a device retrying after a timeout would.
    let batch: Vec<Value> = (1..=5).map(|seq| reading(seq, 20.0 + seq as f64)).collect();
    let (status, body) = api
        .post(Some(&issued.key), serde_json::to_vec(&batch).unwrap())
        .await;
    assert_eq!((status, body), (202, json!({"accepted": 5})));
    let (status, _) = api.post(Some(&issued.key), batch[2].to_string()).await;
    assert_eq!(status, 202);
    // A legacy v1 object over HTTP too.
    let v1 =
        json!({"ts": Utc::now().to_rfc3339(), "temperature": 19.5, "voltage": 3.1, "status": "OK"});
    let (status, _) = api.post(Some(&issued.key), v1.to_string()).await;
    assert_eq!(status, 202);

    // Revoked: refused at once (keys are not cached).
    keys.revoke(&device, &issued.stored.key_id, Utc::now())
        .await
        .unwrap();
    let (status, _) = api
        .post(Some(&issued.key), reading(6, 20.0).to_string())
        .await;
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
        accounting::hot_store_rows(&stack, &device).await.unwrap(),
        12
    );
}

//! Alert webhooks on the local stack: a subscription made through the admin API, a real
//! alert from readings, deliveries to a local receiver that fails the first tries of each
//! event: every alert arrives, signed, after retries spaced by the backoff.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hub_detection::webhook::{verify, SIGNATURE_HEADER};
use hub_e2e::{admin::Role, unique, webhook_receiver::Receiver, Stack};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn alerts_reach_a_subscribed_webhook_signed_and_retried_with_backoff() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let receiver = Receiver::start(2, 503).await.unwrap();
    let device_type = unique("kiln");

    let hook = operator
        .post(
            "/v1/webhooks",
            &json!({"url": receiver.url, "device_types": [device_type]}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let hidden = viewer.get("/v1/webhooks").await.unwrap();
    assert_eq!(
        hidden.status, 403,
        "viewers see webhook URLs: {}",
        hidden.body
    );
    let listed = operator.get("/v1/webhooks").await.unwrap().ok().unwrap();
    let mine = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["webhook_id"] == hook["webhook_id"])
        .unwrap();
    assert!(
        mine.get("secret").is_none(),
        "a listing shows a secret: {mine}"
    );
    // At rest the secret is sealed: no plain copy in the table, and only KMS, with the
    // hook's own id as context, opens it.
    let webhook_id = hook["webhook_id"].as_str().unwrap();
    let item = aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .get_item()
        .table_name(stack.output("WebhooksTableName"))
        .key(
            "webhook_id",
            aws_sdk_dynamodb::types::AttributeValue::S(webhook_id.to_owned()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("secret"), "a plain secret is stored");
    let sealed = item["secret_sealed"].as_b().unwrap().as_ref().to_vec();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    let kms = aws_sdk_kms::Client::new(&stack.aws.sdk);
    let open = |context: &str| {
        kms.decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(sealed.clone()))
            .encryption_context("webhook_id", context)
            .send()
    };
    let opened = open(webhook_id).await.unwrap().plaintext.unwrap();
    assert_eq!(opened.as_ref(), secret.as_bytes());
    assert!(
        open("another-hook").await.is_err(),
        "the sealed secret opens for another hook"
    );
    let refused = operator
        .post("/v1/webhooks", &json!({"url": "ftp://x"}))
        .await
        .unwrap();
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"]["field"], "url");

    operator
        .post("/v1/alerts", &json!({"device_type": device_type, "rule": "temperature > 80", "severity": "critical"}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let id = unique("kiln");
    let device = hub_e2e::admin::http_device(&stack, &admin, &id, &device_type)
        .await
        .unwrap();
    // Rules, registry and hooks are read again after at most 2 s locally.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // 120 normal readings: the model judges a series once it has seen 100.
    let readings = hub_e2e::admin::warm_then_hot(120, 4, 95.0);
    let (status, body) = device
        .post(serde_json::to_vec(&readings).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");

    // The device's alerts (the rule's and the z-score's), as the API lists them.
    let mut alert_ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while alert_ids.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "alerts not raised: {alert_ids:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let page = viewer
            .get(&format!("/v1/alerts?device_id={id}"))
            .await
            .unwrap()
            .ok()
            .unwrap();
        alert_ids = page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert_id"].as_str().unwrap().to_owned())
            .collect();
    }
    alert_ids.sort();

    // Each alert: two refused tries, then delivered; three requests spaced >= 2 s, >= 4 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    let by_event = loop {
        let mut by_event: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for r in receiver.received() {
            let event: Value = serde_json::from_slice(&r.body).unwrap();
            by_event
                .entry(event["data"]["alert_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(r);
        }
        if by_event.len() >= alert_ids.len() && by_event.values().all(|tries| tries.len() >= 3) {
            break by_event;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries incomplete: {:?}",
            by_event
                .iter()
                .map(|(k, v)| (k, v.len()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        by_event.keys().cloned().collect::<Vec<_>>(),
        alert_ids,
        "one delivery per alert"
    );
    for (alert_id, tries) in &by_event {
        assert_eq!(
            tries.len(),
            3,
            "{alert_id}: delivered once after two failures, never again"
        );
        assert_eq!(
            tries.iter().map(|t| t.status).collect::<Vec<_>>(),
            [503, 503, 200]
        );
        for (i, t) in tries.iter().enumerate() {
            assert!(
                verify(&secret, &t.headers[SIGNATURE_HEADER], &t.body),
                "{alert_id} try {i}: bad signature"
            );
            assert_eq!(t.headers["x-hub-delivery-attempt"], (i + 1).to_string());
            assert_eq!(t.body, tries[0].body, "every try sends the same event");
        }
        let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
        assert!(
            gaps[0] >= Duration::from_millis(1500),
            "{alert_id}: first retry after {:?}",
            gaps[0]
        );
        assert!(
            gaps[1] >= Duration::from_millis(3500),
            "{alert_id}: second retry after {:?}",
            gaps[1]
        );
        let event: Value = serde_json::from_slice(&tries[0].body).unwrap();
        assert_eq!(event["type"], "iot.alert.raised.v1");
        assert_eq!(event["data"]["device_id"], json!(id));
    }

    let deleted = operator
        .delete(&format!(
            "/v1/webhooks/{}",
            hook["webhook_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(deleted.status, 200, "{}", deleted.body);
}

//! Alert rules, the alert lifecycle, webhook subscriptions.

use admin_api::ports::AlertRecord;
use hub_events::AlertState;
use serde_json::{json, Value};

use crate::support::*;

fn alert(id: &str, state: AlertState) -> AlertRecord {
    AlertRecord {
        alert_id: id.into(),
        device_id: "d-9".into(),
        rule_id: "r".into(),
        metric: "temperature".into(),
        severity: "critical".into(),
        state,
        count: 3,
        summary: "temperature > 80".into(),
        raised_at: Some("2026-11-23T10:00:00Z".into()),
        window_start: None,
        window_end: None,
        device_type: None,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
    }
}

#[tokio::test]
async fn alert_rules_and_the_alert_lifecycle() {
    let api = api();
    register(&api, "d-9").await;
    let rule = api
        .operator()
        .post(
            "/v1/alerts",
            json!({"device_id": "d-9", "rule": "temp_f > 176", "severity": "critical"}),
        )
        .await
        .expect_status(201);
    assert_eq!(rule.body["rule"], "temperature > 80");
    assert_eq!(rule.body["device_id"], "d-9");
    for (body, field) in [
        (
            json!({"device_id": "d-9", "rule": "temperature = 80"}),
            "rule",
        ),
        (json!({"rule": "temperature > 80"}), "device_id"),
        (
            json!({"device_id": "d-9", "device_type": "x", "rule": "temperature > 80"}),
            "device_id",
        ),
        (
            json!({"device_type": "Env", "rule": "temperature > 80"}),
            "device_type",
        ),
        (
            json!({"device_type": "env", "rule": "temperature > 80", "severity": "loud"}),
            "severity",
        ),
    ] {
        let response = api.operator().post("/v1/alerts", body.clone()).await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        assert_eq!(response.body["error"]["field"], json!(field), "{body}");
    }
    // A rule for a device that does not exist names a missing resource.
    let ghost = json!({"device_id": "ghost", "rule": "temperature > 80"});
    api.operator()
        .post("/v1/alerts", ghost)
        .await
        .expect_status(404);
    let listed = api.viewer().get("/v1/rules").await;
    assert_eq!(listed.body["rules"].as_array().unwrap().len(), 1);
    let rule_id = rule.body["rule_id"].as_str().unwrap();
    api.operator()
        .delete(&format!("/v1/rules/{rule_id}"))
        .await
        .expect_status(200);
    assert_error(
        &api.operator().delete(&format!("/v1/rules/{rule_id}")).await,
        404,
        None,
    );

    api.backend.alerts.lock().unwrap().extend([
        ("a1".to_owned(), alert("a1", AlertState::Open)),
        ("a2".to_owned(), alert("a2", AlertState::Resolved)),
    ]);
    let open = api
        .viewer()
        .get("/v1/alerts?state=open&device_id=d-9")
        .await;
    assert_eq!(open.body["alerts"].as_array().unwrap().len(), 1);
    let acked = api
        .operator()
        .post("/v1/alerts/a1/ack", Value::Null)
        .await
        .expect_status(200);
    assert_eq!(acked.body["state"], "acknowledged");
    assert_eq!(acked.body["acknowledged_by"], "operator-client");
    // Repeating holds; going back is refused.
    api.operator()
        .post("/v1/alerts/a1/ack", Value::Null)
        .await
        .expect_status(200);
    let resolved = api
        .operator()
        .post("/v1/alerts/a1/resolve", Value::Null)
        .await;
    assert_eq!(resolved.body["state"], "resolved");
    assert_error(
        &api.operator().post("/v1/alerts/a2/ack", Value::Null).await,
        409,
        None,
    );
    assert_error(
        &api.operator().post("/v1/alerts/zz/ack", Value::Null).await,
        404,
        None,
    );
    assert_error(
        &api.viewer()
            .post("/v1/alerts/a1/resolve", Value::Null)
            .await,
        403,
        None,
    );
}

#[tokio::test]
async fn webhook_subscriptions_show_their_secret_once() {
    let api = api();
    let created = api
        .operator()
        .post(
            "/v1/webhooks",
            json!({"url": "https://hooks.example.com/a", "severities": ["critical", "critical"]}),
        )
        .await
        .expect_status(201);
    let secret = created.body["secret"].as_str().unwrap();
    assert!(secret.len() >= 40, "{secret}");
    // URLs can carry tokens: viewers do not see them.
    let viewer = api.viewer().get("/v1/webhooks").await;
    assert_error(&viewer, 403, None);
    let listed = api.operator().get("/v1/webhooks").await;
    let hooks = listed.body["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].get("secret").is_none());
    assert_eq!(hooks[0]["severities"], json!(["critical"]));
    for (body, field) in [
        (json!({"url": "http://plain.example.com/"}), "url"),
        (
            json!({"url": "https://x/", "severities": ["loud"]}),
            "severities[0]",
        ),
        (
            json!({"url": "https://x/", "device_types": ["a b"]}),
            "device_types[0]",
        ),
        (json!({"severities": []}), "url"),
    ] {
        let response = api.operator().post("/v1/webhooks", body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.body["error"]["field"], json!(field), "{body}");
    }
    assert_error(
        &api.viewer()
            .post("/v1/webhooks", json!({"url": "https://x/"}))
            .await,
        403,
        None,
    );
    let id = created.body["webhook_id"].as_str().unwrap();
    let path = format!("/v1/webhooks/{id}");
    api.operator().delete(&path).await.expect_status(200);
    assert_error(&api.operator().delete(&path).await, 404, None);
}

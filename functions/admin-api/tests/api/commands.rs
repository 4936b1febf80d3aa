//! Commands: recorded, published, answered.

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn commands_are_recorded_then_published_and_a_failed_publish_reads_undelivered() {
    let api = api();
    register(&api, "cmd-1").await;
    let sent = api
        .operator()
        .post(
            "/v1/devices/cmd-1/commands",
            json!({"name": "set_interval", "params": {"seconds": 30}}),
        )
        .await
        .expect_status(201);
    assert_eq!(sent.body["status"], "sent");
    assert_eq!(sent.body["issued_by"], "operator-client");
    let command_id = sent.body["command_id"].as_str().unwrap().to_owned();
    {
        let published = api.backend.published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].0, "devices/cmd-1/commands");
        let message: Value = serde_json::from_slice(&published[0].1).unwrap();
        assert_eq!(message["command_id"], command_id.as_str());
        assert_eq!(message["params"], json!({"seconds": 30}));
    }

    *api.backend.publish_down.lock().unwrap() = true;
    let lost = api
        .operator()
        .post("/v1/devices/cmd-1/commands", json!({"name": "reboot"}))
        .await;
    assert_error(&lost, 503, None);
    *api.backend.publish_down.lock().unwrap() = false;

    let listed = api
        .viewer()
        .get("/v1/devices/cmd-1/commands?limit=1")
        .await
        .expect_status(200);
    let newest = &listed.body["commands"][0];
    assert_eq!(newest["name"], "reboot");
    assert_eq!(newest["status"], "undelivered");
    assert!(newest["error"].is_string());
    let token = listed.body["next_token"].as_str().unwrap().to_owned();
    let older = api
        .viewer()
        .get(&format!(
            "/v1/devices/cmd-1/commands?limit=1&next_token={token}"
        ))
        .await;
    assert_eq!(older.body["commands"][0]["command_id"], command_id.as_str());
    // A full page names where to go on, as a DynamoDB query does; past the end is empty.
    let token = older.body["next_token"].as_str().unwrap().to_owned();
    let past = api
        .viewer()
        .get(&format!(
            "/v1/devices/cmd-1/commands?limit=1&next_token={token}"
        ))
        .await
        .expect_status(200);
    assert_eq!(past.body["commands"], json!([]));
    assert!(past.body["next_token"].is_null());

    let one = api
        .viewer()
        .get(&format!("/v1/devices/cmd-1/commands/{command_id}"))
        .await;
    assert_eq!(one.body["status"], "sent");
    let refused = api
        .viewer()
        .post("/v1/devices/cmd-1/commands", json!({"name": "reboot"}))
        .await;
    assert_error(&refused, 403, None);
    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "params": "p"}), "params"),
        (json!({"name": "x", "ttl_seconds": 100000}), "ttl_seconds"),
        (json!({"name": "x", "when": 1}), "when"),
    ] {
        let reply = api
            .operator()
            .post("/v1/devices/cmd-1/commands", bad.clone())
            .await;
        assert_error(&reply, 400, Some(field));
    }
    assert_eq!(api.backend.published.lock().unwrap().len(), 1);

    // A whole number is an integer whatever its form; null is not an object.
    register(&api, "cmd-2").await;
    let whole = json!({"name": "reboot", "ttl_seconds": 30.0});
    api.operator()
        .post("/v1/devices/cmd-2/commands", whole)
        .await
        .expect_status(201);
    let null_params = json!({"name": "reboot", "params": null});
    let refused = api
        .operator()
        .post("/v1/devices/cmd-2/commands", null_params)
        .await;
    assert_error(&refused, 400, Some("params"));
}

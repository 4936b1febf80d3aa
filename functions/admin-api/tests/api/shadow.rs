//! Device shadows: desired, reported, delta, refusals.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn shadows_show_desired_reported_and_delta_and_refuse_bad_state() {
    let api = api();
    register(&api, "sh-1").await;
    let empty = api
        .viewer()
        .get("/v1/devices/sh-1/shadow")
        .await
        .expect_status(200);
    assert_eq!(empty.body["version"], 0);
    api.backend
        .report("sh-1", json!({"interval": 60, "led": "off"}));
    let set = api
        .operator()
        .patch(
            "/v1/devices/sh-1/shadow",
            json!({"desired": {"interval": 30}}),
        )
        .await
        .expect_status(200);
    assert_eq!(set.body["desired"], json!({"interval": 30}));
    assert_eq!(set.body["reported"], json!({"interval": 60, "led": "off"}));
    assert_eq!(set.body["delta"], json!({"interval": 30}));
    assert_eq!(set.body["version"], 2);

    let stale = api
        .operator()
        .patch(
            "/v1/devices/sh-1/shadow",
            json!({"desired": {"interval": 10}, "expected_version": 1}),
        )
        .await;
    assert_error(&stale, 409, None);
    for (bad, field) in [
        (json!({"desired": [1]}), "desired"),
        (json!({"desired": {"$meta": 1}}), "desired.$meta"),
        (json!({"desired": {}, "extra": 1}), "extra"),
        (json!({}), "desired"),
        (
            json!({"desired": {"a": 1}, "expected_version": -1}),
            "expected_version",
        ),
    ] {
        let reply = api
            .operator()
            .patch("/v1/devices/sh-1/shadow", bad.clone())
            .await;
        assert_error(&reply, 400, Some(field));
    }
    let viewer = api
        .viewer()
        .patch(
            "/v1/devices/sh-1/shadow",
            json!({"desired": {"interval": 1}}),
        )
        .await;
    assert_error(&viewer, 403, None);
    // Cleared desired state leaves no delta; nothing above changed the version.
    let cleared = api
        .operator()
        .patch("/v1/devices/sh-1/shadow", json!({"desired": null}))
        .await;
    assert_eq!(cleared.body["version"], 3, "{}", cleared.body);
    assert!(cleared.body["delta"].is_null(), "{}", cleared.body);
    let unknown = api.viewer().get("/v1/devices/nobody/shadow").await;
    assert_error(&unknown, 404, None);
}

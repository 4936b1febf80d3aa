//! Rollouts: ready firmware, the group, cancellation, events.

use chrono::Utc;
use hub_events::RolloutEventKind;
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn rollouts_start_only_with_ready_firmware_for_every_device_of_the_group() {
    use hub_fleet::firmware::{Artifact, ArtifactStatus};
    let api = api();
    let artifact = |version: &str, device_type: &str, status| Artifact {
        version: version.into(),
        device_type: device_type.into(),
        sha256: "ab".repeat(32),
        size: 10,
        signature: "c2ln".into(),
        signature_verified: true,
        status,
        reason: None,
        s3_key: format!("firmware/{version}/x.bin"),
        created_at: Utc::now(),
        created_by: "admin".into(),
        checked_at: None,
    };
    {
        let mut firmware = api.backend.firmware.artifacts.lock().unwrap();
        for a in [
            artifact("2.0.0", "env-sensor", ArtifactStatus::Ready),
            artifact("2.1.0", "env-sensor", ArtifactStatus::PendingUpload),
            artifact("9.0.0", "dc-meter", ArtifactStatus::Ready),
        ] {
            firmware.insert(a.version.clone(), a);
        }
    }
    for i in 0..4 {
        api.operator()
            .post(
                "/v1/devices",
                json!({"device_id": format!("s-{i}"), "device_type": "env-sensor",
                   "group": "line-a", "firmware_version": "1.0.0"}),
            )
            .await
            .expect_status(201);
    }
    let start = |version: &str, target: &str, policy: Value| json!({"firmware_version": version, "target": target, "policy": policy});
    let admin = api.admin();
    let post = |body: Value| admin.post("/v1/ota/rollout", body);

    assert_error(&post(start("3.0.0", "line-a", json!({}))).await, 404, None);
    assert_error(&post(start("2.1.0", "line-a", json!({}))).await, 409, None);
    assert_error(&post(start("9.0.0", "line-a", json!({}))).await, 409, None);
    assert_error(&post(start("2.0.0", "empty", json!({}))).await, 409, None);
    assert_error(
        &post(start("2.0.0", "line-a", json!({"canary_percent": 120}))).await,
        400,
        Some("policy.canary_percent"),
    );
    assert_error(
        &post(start("2.0.0", "line-a", json!({"canry": 5}))).await,
        400,
        None,
    );
    let operator = api
        .operator()
        .post("/v1/ota/rollout", start("2.0.0", "line-a", json!({})))
        .await;
    assert_error(&operator, 403, None);
    assert!(api.backend.jobs.lock().unwrap().is_empty());

    // A thing put into the IoT group outside the hub: the job would reach it unchecked.
    api.backend.iot.lock().unwrap().things.insert(
        "stranger".into(),
        ("dc-meter".into(), Some("line-a".into())),
    );
    let refused = post(start("2.0.0", "line-a", json!({}))).await;
    assert_error(&refused, 409, None);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stranger"),
        "{}",
        refused.body
    );
    // A registry device missing from the IoT group would never get the job.
    api.backend.iot.lock().unwrap().things.remove("stranger");
    let moved = api
        .backend
        .iot
        .lock()
        .unwrap()
        .things
        .remove("s-3")
        .unwrap();
    assert_error(&post(start("2.0.0", "line-a", json!({}))).await, 409, None);
    api.backend
        .iot
        .lock()
        .unwrap()
        .things
        .insert("s-3".into(), moved);
    assert!(api.backend.jobs.lock().unwrap().is_empty());

    let created = post(start("2.0.0", "line-a", json!({"canary_percent": 25}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["rollout_id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["device_count"], 4);
    assert_eq!(created.body["canary_size"], 1);
    assert_eq!(created.body["counts"]["queued"], 4);
    assert_eq!(created.body["policy"]["abort_failure_percent"], 5.0);
    assert_eq!(
        api.backend.jobs.lock().unwrap()[&id],
        ("line-a".to_owned(), "2.0.0".to_owned())
    );
    // One rollout at a time per group.
    assert_error(&post(start("2.0.0", "line-a", json!({}))).await, 409, None);

    // Devices installing now read in_progress (Jobs has no event for a start).
    api.backend.installing.lock().unwrap().push("s-2".into());
    let shown = api
        .viewer()
        .get(&format!("/v1/ota/rollouts/{id}"))
        .await
        .expect_status(200);
    assert_eq!(shown.body["counts"]["in_progress"], 1);
    assert_eq!(shown.body["counts"]["queued"], 3);
    let devices = shown.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 4);
    assert_eq!(devices[2]["status"], "in_progress");
    assert_eq!(devices[0]["previous_version"], "1.0.0");
    assert_error(
        &api.viewer().get("/v1/ota/rollouts/nope").await,
        400,
        Some("id"),
    );
    assert_error(
        &api.viewer()
            .get("/v1/ota/rollouts/ota-00000000000000000000000000000000")
            .await,
        404,
        None,
    );

    let cancel = format!("/v1/ota/rollouts/{id}/cancel");
    let cancelled = api
        .admin()
        .post(&cancel, Value::Null)
        .await
        .expect_status(200);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["reason"], "cancelled by admin-client");
    assert_eq!(
        api.backend.cancelled_jobs.lock().unwrap().clone(),
        vec![id.clone()]
    );
    assert_error(&api.admin().post(&cancel, Value::Null).await, 409, None);
    // The steps the API took are announced, once each: refused requests announce nothing.
    let announced: Vec<(RolloutEventKind, String, u64)> = api
        .backend
        .rollout_events
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.data.kind, e.data.rollout_id.clone(), e.data.counts.queued))
        .collect();
    assert_eq!(
        announced,
        [
            (RolloutEventKind::Started, id.clone(), 4),
            (RolloutEventKind::Cancelled, id.clone(), 4)
        ]
    );
    let listed = api.viewer().get("/v1/ota/rollouts").await;
    assert_eq!(listed.body["rollouts"][0]["rollout_id"], json!(id));
    // Every change is in the audit log.
    let audit = api.backend.audit.lock().unwrap();
    assert!(audit
        .iter()
        .any(|(e, status)| e.action == "POST /v1/ota/rollout" && *status == Some(201)));
}

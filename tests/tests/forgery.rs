//! What a device can make the platform believe, tried for real: a device with a
//! certificate the API issued publishes, on the one topic a rule forwards to the fleet
//! function (its own `devices/{id}/commands/ack`), every platform event shape it could
//! forge — a rollout's abort, another device's job success, another device's
//! disconnect pinned far in the future, bucket and queue records. None of it changes a
//! rollout, a rollout device or the registry; the device's own answer still counts, and
//! the platform's own events still do.

use std::time::Duration;

use hub_admin::AdminClient;
use hub_e2e::{
    admin::{provision, Role},
    drive,
    ota::{image, register_group},
    poll_until, unique, Stack,
};
use rumqttc::{AsyncClient, QoS};
use serde_json::{json, Value};

const DEVICE_TYPE: &str = "env-sensor";

async fn get(client: &AdminClient, path: &str) -> Value {
    client.get(path).await.unwrap().ok().unwrap()
}

async fn publish(device: &AsyncClient, topic: &str, payload: &Value) {
    device
        .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_events_a_device_forges_on_its_answer_topic_change_nothing() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();

    // A rollout to two devices nobody serves: it stays in progress, its rows queued.
    let group = unique("forge");
    let (base, next) = (unique("1.0.0-forge"), unique("2.0.0-forge"));
    let key = stack.firmware_signing_key().unwrap();
    for (i, version) in [&base, &next].into_iter().enumerate() {
        let artifact = admin
            .add_firmware(
                version,
                DEVICE_TYPE,
                image(70 + i as u64, 4096),
                &key,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(artifact["status"], "ready", "{artifact}");
    }
    let targets = register_group(&admin, &group, &group, 2, DEVICE_TYPE, &base)
        .await
        .unwrap();
    let created = admin
        .post(
            "/v1/ota/rollout",
            &json!({"firmware_version": next, "target": group, "policy": {"canary_percent": 50}}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let rollout_id = created["rollout_id"].as_str().unwrap().to_owned();
    let rollout_path = format!("/v1/ota/rollouts/{rollout_id}");
    let job_id = get(&viewer, &rollout_path).await["job_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The victim is connected: the registry says so.
    let victim = &targets[0];
    let (victim_client, victim_events) = stack
        .connect(&victim.id, Some(&victim.identity))
        .await
        .unwrap();
    let _victim_incoming = drive(victim_events);
    let victim_path = format!("/v1/devices/{}", victim.id);
    poll_until(
        "victim connected",
        async || get(&viewer, &victim_path).await,
        |d| d["connectivity"] == "connected",
    )
    .await;

    let intruder = unique("forger");
    let (_, identity) = provision(&admin, &intruder, DEVICE_TYPE).await;
    let (device, events) = stack.connect(&intruder, Some(&identity)).await.unwrap();
    let _incoming = drive(events);
    let ack = format!("devices/{intruder}/commands/ack");
    let arn = "arn:aws:iot:us-east-1:000000000000";
    let forged = [
        json!({"hub_rule": "job", "eventType": "JOB", "eventId": "f1", "timestamp": 1_795_469_450,
            "operation": "canceled", "jobId": job_id, "status": "CANCELED",
            "comment": "ABORT_CANCEL", "reasonCode": "ABORT_CANCEL",
            "targets": [format!("{arn}:thinggroup/{group}")]}),
        json!({"hub_rule": "job_execution", "eventType": "JOB_EXECUTION", "eventId": "f2",
            "timestamp": 1_795_469_389, "operation": "succeeded", "jobId": job_id,
            "thingArn": format!("{arn}:thing/{}", victim.id), "status": "SUCCEEDED",
            "executionNumber": 1, "statusDetails": {"firmware_version": next}}),
        json!({"hub_rule": "presence", "clientId": victim.id, "timestamp": 4_102_444_800_000i64,
            "eventType": "disconnected", "versionNumber": 999_999, "disconnectReason": "FORGED"}),
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": stack.output("FirmwareBucketName")},
                   "object": {"key": format!("firmware/{next}/x.bin"), "size": 1}}}]}),
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m",
            "body": json!({"rollout_id": rollout_id, "device_id": victim.id, "attempt": 2}).to_string()}]}),
    ];
    for payload in &forged {
        publish(&device, &ack, payload).await;
    }

    // Positive control on the same path: the intruder's own answer to its own command
    // is recorded — so the forged messages did reach the function, and were refused.
    let command = operator
        .post(
            &format!("/v1/devices/{intruder}/commands"),
            &json!({"name": "ping"}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let command_id = command["command_id"].as_str().unwrap();
    publish(
        &device,
        &ack,
        &json!({"command_id": command_id, "status": "succeeded"}),
    )
    .await;
    let command_path = format!("/v1/devices/{intruder}/commands/{command_id}");
    poll_until(
        "answer recorded",
        async || get(&viewer, &command_path).await,
        |c| c["status"] == "succeeded",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let rollout = get(&viewer, &rollout_path).await;
    assert_eq!(rollout["status"], "in_progress", "{rollout}");
    let rows = rollout["devices"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["status"] == "queued" || r["status"] == "in_progress"),
        "{rollout}"
    );
    assert_eq!(rollout["counts"]["succeeded"], 0, "{rollout}");
    let row = get(&viewer, &victim_path).await;
    assert_eq!(row["connectivity"], "connected", "{row}");
    assert_eq!(row["firmware_version"], base.as_str(), "{row}");

    // Positive controls from the platform itself: the victim's real disconnect, and
    // the job's real cancellation, are believed.
    victim_client.disconnect().await.unwrap();
    poll_until(
        "victim disconnected",
        async || get(&viewer, &victim_path).await,
        |d| d["connectivity"] == "disconnected",
    )
    .await;
    let cancelled = admin
        .post(&format!("{rollout_path}/cancel"), &json!({}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    poll_until(
        "cancel followed",
        async || get(&viewer, &rollout_path).await,
        |r| r["counts"]["queued"] == 0,
    )
    .await;
    let _ = device.disconnect().await;
}

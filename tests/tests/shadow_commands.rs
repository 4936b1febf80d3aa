//! Shadows and commands end to end: a device with a certificate the API issued, on
//! Mosquitto, talking to the emulator's Device Shadow service through the bridge's relay;
//! operators reading and setting state and sending commands through the API Gateway.

use std::time::{Duration, Instant};

use hub_admin::AdminClient;
use hub_e2e::{
    admin::{provision, Role},
    drive, poll_until, unique, Stack,
};
use rumqttc::{AsyncClient, Publish, QoS};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// The next message on `topic`, as JSON, within `timeout`.
async fn next_on(
    incoming: &mut UnboundedReceiver<Publish>,
    topic: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let publish = tokio::time::timeout(remaining, incoming.recv())
            .await
            .unwrap_or_else(|_| panic!("nothing on {topic} within {timeout:?}"))
            .expect("connection open");
        if publish.topic == topic {
            return serde_json::from_slice(&publish.payload).unwrap();
        }
    }
}

async fn subscribe(
    client: &AsyncClient,
    incoming: &mut UnboundedReceiver<Publish>,
    filters: &[String],
) {
    for filter in filters {
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    }
    // rumqttc hands SUBACKs to the event loop only; a short pause lets them land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while incoming.try_recv().is_ok() {}
}

async fn shadow(viewer: &AdminClient, id: &str) -> Value {
    viewer
        .get(&format!("/v1/devices/{id}/shadow"))
        .await
        .unwrap()
        .ok()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn desired_state_reaches_the_device_as_a_delta_and_its_report_closes_it() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let id = unique("shadow");
    let (_, identity) = provision(&admin, &id, "env-sensor").await;

    // No shadow yet: an empty one at version 0.
    let empty = shadow(&viewer, &id).await;
    assert_eq!(empty["version"], 0, "{empty}");
    assert_eq!(empty["desired"], json!({}));

    let (device, events) = stack.connect(&id, Some(&identity)).await.unwrap();
    let mut incoming = drive(events);
    let base = format!("$aws/things/{id}/shadow");
    subscribe(
        &device,
        &mut incoming,
        &[
            format!("{base}/update/accepted"),
            format!("{base}/update/delta"),
        ],
    )
    .await;

    // The device reports its state on its shadow topic; the service accepts it.
    let report = |state: Value| json!({"state": {"reported": state}}).to_string();
    device
        .publish(
            format!("{base}/update"),
            QoS::AtLeastOnce,
            false,
            report(json!({"interval": 60, "led": "off"})),
        )
        .await
        .unwrap();
    let accepted = next_on(
        &mut incoming,
        &format!("{base}/update/accepted"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(accepted["state"]["reported"]["interval"], 60, "{accepted}");
    let reported = shadow(&viewer, &id).await;
    assert_eq!(
        reported["reported"],
        json!({"interval": 60, "led": "off"}),
        "{reported}"
    );
    assert!(reported["delta"].is_null(), "{reported}");

    // A viewer may not set state; nothing changes.
    let refused = viewer
        .patch(
            &format!("/v1/devices/{id}/shadow"),
            &json!({"desired": {"interval": 5}}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 403);

    // The operator sets desired state; the device is told the difference.
    let set = operator
        .patch(
            &format!("/v1/devices/{id}/shadow"),
            &json!({"desired": {"interval": 30}}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(set["delta"], json!({"interval": 30}), "{set}");
    let delta = next_on(
        &mut incoming,
        &format!("{base}/update/delta"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(delta["state"], json!({"interval": 30}), "{delta}");

    // The device applies it and reports; the delta is gone.
    device
        .publish(
            format!("{base}/update"),
            QoS::AtLeastOnce,
            false,
            report(json!({"interval": 30})),
        )
        .await
        .unwrap();
    let closed = poll_until(
        "delta closed",
        async || shadow(&viewer, &id).await,
        |s| s["delta"].is_null(),
    )
    .await;
    assert_eq!(closed["reported"]["interval"], 30);
    assert_eq!(closed["reported"]["led"], "off");
    let version = closed["version"].as_i64().unwrap();

    // Optimistic concurrency: a stale version is a 409 and changes nothing.
    let stale = operator
        .patch(
            &format!("/v1/devices/{id}/shadow"),
            &json!({"desired": {"interval": 10}, "expected_version": version - 1}),
        )
        .await
        .unwrap();
    assert_eq!(stale.status, 409, "{}", stale.body);
    // Malformed desired state is a 400 naming the field.
    for bad in [
        json!({"desired": "fast"}),
        json!({"desired": {}}),
        json!({"wanted": {}}),
    ] {
        let reply = operator
            .patch(&format!("/v1/devices/{id}/shadow"), &bad)
            .await
            .unwrap();
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(
            reply.body["error"]["field"].is_string(),
            "{bad}: {}",
            reply.body
        );
    }

    // Another device cannot write this one's shadow: the broker drops it (ACL).
    let other = unique("shadow-other");
    let (_, other_identity) = provision(&admin, &other, "env-sensor").await;
    let (intruder, intruder_events) = stack.connect(&other, Some(&other_identity)).await.unwrap();
    let _intruder_incoming = drive(intruder_events);
    intruder
        .publish(
            format!("{base}/update"),
            QoS::AtLeastOnce,
            false,
            report(json!({"interval": 1})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = shadow(&viewer, &id).await;
    assert_eq!(after["version"], version, "{after}");
    assert_eq!(after["reported"]["interval"], 30);
    let _ = intruder.disconnect().await;
    let _ = device.disconnect().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_reach_the_device_and_its_answer_is_recorded_once() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let id = unique("command");
    let (_, identity) = provision(&admin, &id, "dc-meter").await;
    let (device, events) = stack.connect(&id, Some(&identity)).await.unwrap();
    let mut incoming = drive(events);
    let topic = format!("devices/{id}/commands");
    subscribe(&device, &mut incoming, std::slice::from_ref(&topic)).await;

    // Viewers cannot send commands.
    let refused = viewer
        .post(
            &format!("/v1/devices/{id}/commands"),
            &json!({"name": "reboot"}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 403);

    let sent = operator
        .post(
            &format!("/v1/devices/{id}/commands"),
            &json!({"name": "set_interval", "params": {"seconds": 30}, "ttl_seconds": 60}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(sent["status"], "sent", "{sent}");
    let command_id = sent["command_id"].as_str().unwrap().to_owned();

    // The device gets it on its command topic and answers on the ack topic.
    let message = next_on(&mut incoming, &topic, Duration::from_secs(10)).await;
    assert_eq!(message["command_id"], command_id.as_str(), "{message}");
    assert_eq!(message["name"], "set_interval");
    assert_eq!(message["params"], json!({"seconds": 30}));
    let answer = json!({"command_id": command_id, "status": "succeeded", "result": {"interval_seconds": 30}});
    device
        .publish(
            format!("{topic}/ack"),
            QoS::AtLeastOnce,
            false,
            answer.to_string(),
        )
        .await
        .unwrap();
    let path = format!("/v1/devices/{id}/commands/{command_id}");
    let done = poll_until(
        "answer recorded",
        async || viewer.get(&path).await.unwrap().ok().unwrap(),
        |c| c["status"] != "sent",
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"interval_seconds": 30}));
    assert!(done["answered_at"].is_string());

    // A second, different answer does not overwrite the first.
    let contrary = json!({"command_id": command_id, "status": "failed"});
    device
        .publish(
            format!("{topic}/ack"),
            QoS::AtLeastOnce,
            false,
            contrary.to_string(),
        )
        .await
        .unwrap();

    // A command nobody answers in time reads expired, and a late answer is not taken.
    let short = operator
        .post(
            &format!("/v1/devices/{id}/commands"),
            &json!({"name": "reboot", "ttl_seconds": 5}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let short_id = short["command_id"].as_str().unwrap().to_owned();
    let delivered = next_on(&mut incoming, &topic, Duration::from_secs(10)).await;
    assert_eq!(delivered["command_id"], short_id.as_str());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let late = json!({"command_id": short_id, "status": "succeeded"});
    device
        .publish(
            format!("{topic}/ack"),
            QoS::AtLeastOnce,
            false,
            late.to_string(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = viewer
        .get(&format!("/v1/devices/{id}/commands/{short_id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(expired["status"], "expired", "{expired}");
    assert!(expired.get("answered_at").is_none(), "{expired}");
    let first = viewer.get(&path).await.unwrap().ok().unwrap();
    assert_eq!(first["status"], "succeeded", "{first}");

    // Newest first.
    let listed = viewer
        .get(&format!("/v1/devices/{id}/commands"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let ids: Vec<&str> = listed["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![short_id.as_str(), command_id.as_str()]);

    // Bad requests are 4xx naming the problem.
    for (bad, field) in [
        (json!({"name": "re boot"}), "name"),
        (json!({"name": "x", "params": [1]}), "params"),
        (json!({"name": "x", "ttl_seconds": 0}), "ttl_seconds"),
        (json!({"params": {}}), "name"),
    ] {
        let reply = operator
            .post(&format!("/v1/devices/{id}/commands"), &bad)
            .await
            .unwrap();
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.body["error"]["field"], field, "{bad}: {}", reply.body);
    }
    let missing = viewer
        .get(&format!("/v1/devices/{id}/commands/no-such-command"))
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    let _ = device.disconnect().await;
}

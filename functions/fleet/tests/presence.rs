//! Presence events (fixtures in the shape IoT Core publishes, and a batch as the presence
//! queue delivers it) against the in-memory registry: order, duplicates, strangers,
//! malformed events, and what a batch reports back to be received again.

use chrono::Utc;
use fleet::{
    dispatch, handle,
    memory::{self, MemoryCommands, MemoryFirmware, MemoryRegistry, MemoryRollouts},
    Applied, BatchOutcome, Connectivity, Outcome,
};
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn connect_then_disconnect_and_late_or_repeated_events_do_not_go_back() {
    let registry = MemoryRegistry::with_devices(&["sensor-0042"]);
    let connected = fixture("iot-presence-connected.json");
    let disconnected = fixture("iot-presence-disconnected.json");
    assert_eq!(
        handle(&registry, connected.clone()).await.unwrap(),
        Applied::Applied
    );
    assert_eq!(
        handle(&registry, disconnected.clone()).await.unwrap(),
        Applied::Applied
    );
    // The connect event again (redelivered late): older than what the row holds.
    assert_eq!(handle(&registry, connected).await.unwrap(), Applied::Stale);
    // The same disconnect twice is harmless.
    assert_eq!(
        handle(&registry, disconnected).await.unwrap(),
        Applied::Applied
    );
    let row = registry.rows.lock().unwrap()["sensor-0042"]
        .clone()
        .unwrap();
    assert_eq!(row.connectivity, Connectivity::Disconnected);
    assert_eq!(row.at.to_rfc3339(), "2026-11-23T10:01:01.234+00:00");
    assert_eq!(
        row.disconnect_reason.as_deref(),
        Some("MQTT_KEEP_ALIVE_TIMEOUT")
    );
}

#[tokio::test]
async fn a_reconnect_in_the_same_millisecond_is_ordered_by_version() {
    let registry = MemoryRegistry::with_devices(&["d"]);
    let event = |kind: &str, version: i64| json!({"clientId": "d", "timestamp": 1000, "eventType": kind, "versionNumber": version});
    handle(&registry, event("connected", 2)).await.unwrap();
    assert_eq!(
        handle(&registry, event("disconnected", 1)).await.unwrap(),
        Applied::Stale
    );
    let row = registry.rows.lock().unwrap()["d"].clone().unwrap();
    assert_eq!(row.connectivity, Connectivity::Connected);
}

#[tokio::test]
async fn clients_that_are_not_devices_are_ignored_and_garbage_is_an_error() {
    let registry = MemoryRegistry::with_devices(&["d"]);
    let stranger =
        json!({"clientId": "hub-local-bridge", "timestamp": 5, "eventType": "connected"});
    assert_eq!(
        handle(&registry, stranger).await.unwrap(),
        Applied::NotADevice
    );
    for bad in [
        json!({"clientId": "d", "timestamp": 5, "eventType": "subscribed"}),
        json!({"clientId": "d", "eventType": "connected"}),
        json!({"clientId": "", "timestamp": 5, "eventType": "connected"}),
        json!({"clientId": "d", "timestamp": i64::MAX, "eventType": "connected"}),
        json!("connected"),
    ] {
        assert!(handle(&registry, bad.clone()).await.is_err(), "{bad}");
    }
    assert_eq!(registry.rows.lock().unwrap()["d"], None);
}

/// A batch through the function's entry, as the presence queue delivers it.
async fn batch(registry: &MemoryRegistry, event: Value) -> (Outcome, Value) {
    let outcome = dispatch(
        &memory::origins(),
        registry,
        &MemoryCommands::default(),
        &MemoryFirmware::default(),
        &MemoryRollouts::default(),
        event,
        Utc::now(),
    )
    .await
    .unwrap();
    let response = outcome.response();
    (outcome, response)
}

#[tokio::test]
async fn a_batch_from_the_queue_leaves_each_device_at_its_newest_event_whatever_the_order() {
    let registry = MemoryRegistry::with_devices(&["sensor-0042", "sensor-0043"]);
    // The disconnect of sensor-0042 comes first in the batch, its connect last.
    let (outcome, response) = batch(&registry, fixture("sqs-presence-batch.json")).await;
    assert_eq!(
        outcome,
        Outcome::Presence(BatchOutcome {
            applied: 2,
            stale: 1,
            not_devices: 0,
            failed: vec![],
        })
    );
    assert_eq!(response, json!({"batchItemFailures": []}));
    let rows = registry.rows.lock().unwrap().clone();
    let kept = rows["sensor-0042"].clone().unwrap();
    assert_eq!(kept.connectivity, Connectivity::Disconnected);
    assert_eq!(
        kept.disconnect_reason.as_deref(),
        Some("MQTT_KEEP_ALIVE_TIMEOUT")
    );
    assert_eq!(
        rows["sensor-0043"].clone().unwrap().connectivity,
        Connectivity::Connected
    );

    // The same batch again (a redelivery) changes nothing, and fails nothing.
    let (outcome, _) = batch(&registry, fixture("sqs-presence-batch.json")).await;
    assert_eq!(
        outcome,
        Outcome::Presence(BatchOutcome {
            applied: 2,
            stale: 1,
            ..Default::default()
        })
    );
    assert_eq!(registry.rows.lock().unwrap().clone(), rows);
}

#[tokio::test]
async fn unreadable_messages_are_received_again_and_the_readable_ones_are_applied() {
    let registry = MemoryRegistry::with_devices(&["d1", "d2"]);
    let event = memory::presence_batch(&[
        json!({"clientId": "d1", "timestamp": 5, "eventType": "connected"}),
        json!({"clientId": "d2", "eventType": "connected"}),
        json!({"clientId": "d2", "timestamp": 6, "eventType": "subscribed"}),
        json!({"clientId": "hub-local-bridge", "timestamp": 7, "eventType": "connected"}),
    ]);
    let (outcome, response) = batch(&registry, event).await;
    assert_eq!(
        outcome,
        Outcome::Presence(BatchOutcome {
            applied: 1,
            stale: 0,
            not_devices: 1,
            failed: vec!["m1".into(), "m2".into()],
        })
    );
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]})
    );
    let rows = registry.rows.lock().unwrap().clone();
    assert!(rows["d1"].is_some());
    assert_eq!(rows["d2"], None);
}

#[tokio::test]
async fn a_batch_that_cannot_be_written_is_received_again_whole() {
    let registry = MemoryRegistry::with_devices(&["d1"]);
    registry.fail_writes();
    let event = memory::presence_batch(&[
        json!({"clientId": "d1", "timestamp": 5, "eventType": "connected"}),
        json!({"clientId": "d1", "timestamp": 9, "eventType": "disconnected"}),
    ]);
    let (outcome, response) = batch(&registry, event).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}),
        "{outcome:?}"
    );
    assert_eq!(registry.rows.lock().unwrap()["d1"], None);
}

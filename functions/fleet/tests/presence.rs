//! Presence events (fixtures in the shape IoT Core publishes) against the in-memory
//! registry: order, duplicates, strangers, and malformed events.

use fleet::{handle, memory::MemoryRegistry, Applied, Connectivity};
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

//! Sockets and the fan-out over the in-memory ports: subscriptions answered over the
//! socket, each event delivered once to each subscriber of any of its channels and to no
//! one else, and a gone connection forgotten.

use realtime::{
    channel::Channel,
    memory::{MemoryConnections, MemorySockets},
    ports::Connection,
    push::{push, Outgoing},
    socket::{handle, SocketEvent},
    token::Role,
};
use serde_json::json;

async fn connect(connections: &MemoryConnections, sockets: &MemorySockets, id: &str) {
    let connection = Connection {
        connection_id: id.into(),
        subject: format!("user-of-{id}"),
        role: Role::Viewer,
        connected_at: chrono::Utc::now(),
    };
    handle(connections, sockets, SocketEvent::Connect(connection))
        .await
        .unwrap();
}

async fn say(
    connections: &MemoryConnections,
    sockets: &MemorySockets,
    id: &str,
    body: serde_json::Value,
) {
    handle(
        connections,
        sockets,
        SocketEvent::Message {
            connection_id: id.into(),
            body: body.to_string(),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn subscriptions_are_answered_and_bad_frames_get_an_error_not_a_closed_socket() {
    let (connections, sockets) = (MemoryConnections::default(), MemorySockets::default());
    connect(&connections, &sockets, "c-1").await;
    say(
        &connections,
        &sockets,
        "c-1",
        json!({"action": "subscribe", "channels": ["device:d-1", "alerts"]}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "c-1",
        json!({"action": "subscribe", "channels": ["nope"]}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "c-1",
        json!({"action": "unsubscribe", "channels": ["alerts"]}),
    )
    .await;
    let answers = sockets.received("c-1");
    assert_eq!(
        answers[0],
        json!({"type": "subscribed", "channels": ["device:d-1", "alerts"]})
    );
    assert_eq!(answers[1]["type"], "error");
    assert_eq!(answers[1]["error"]["code"], "bad_channel");
    assert_eq!(
        answers[2],
        json!({"type": "unsubscribed", "channels": ["device:d-1"]})
    );

    // A connection that was never recorded (expired) is told to connect again.
    say(
        &connections,
        &sockets,
        "c-ghost",
        json!({"action": "subscribe", "channels": ["alerts"]}),
    )
    .await;
    assert_eq!(
        sockets.received("c-ghost")[0]["error"]["code"],
        "unknown_connection"
    );
}

#[tokio::test]
async fn a_connection_holds_at_most_fifty_channels() {
    let (connections, sockets) = (MemoryConnections::default(), MemorySockets::default());
    connect(&connections, &sockets, "c-1").await;
    let first: Vec<String> = (0..40).map(|i| format!("device:d-{i}")).collect();
    let more: Vec<String> = (40..60).map(|i| format!("device:d-{i}")).collect();
    say(
        &connections,
        &sockets,
        "c-1",
        json!({"action": "subscribe", "channels": first}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "c-1",
        json!({"action": "subscribe", "channels": more}),
    )
    .await;
    let answers = sockets.received("c-1");
    assert_eq!(answers[0]["channels"].as_array().unwrap().len(), 40);
    assert_eq!(answers[1]["error"]["code"], "too_many_channels");
    // Nothing of the refused frame was taken.
    let held = &connections.connections.lock().unwrap()["c-1"].1;
    assert_eq!(held.len(), 40);
}

#[tokio::test]
async fn each_event_reaches_each_subscriber_once_and_gone_connections_are_forgotten() {
    let (connections, sockets) = (MemoryConnections::default(), MemorySockets::default());
    for id in ["by-device", "by-type", "both", "alerts-only", "gone"] {
        connect(&connections, &sockets, id).await;
    }
    say(
        &connections,
        &sockets,
        "by-device",
        json!({"action": "subscribe", "channels": ["device:d-1"]}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "by-type",
        json!({"action": "subscribe", "channels": ["type:env-sensor"]}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "both",
        json!({"action": "subscribe", "channels": ["device:d-1", "type:env-sensor"]}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "alerts-only",
        json!({"action": "subscribe", "channels": ["alerts"]}),
    )
    .await;
    say(
        &connections,
        &sockets,
        "gone",
        json!({"action": "subscribe", "channels": ["device:d-1"]}),
    )
    .await;
    sockets.sent.lock().unwrap().clear();
    sockets.gone.lock().unwrap().insert("gone".into());

    let reading = Outgoing {
        channels: vec![
            Channel::Device("d-1".into()),
            Channel::DeviceType("env-sensor".into()),
        ],
        message: json!({"type": "reading", "device_id": "d-1", "metrics": {"temperature": 21.0}}),
    };
    let other = Outgoing {
        channels: vec![Channel::Device("d-2".into())],
        message: json!({"type": "reading", "device_id": "d-2"}),
    };
    let summary = push(&connections, &sockets, &[reading.clone(), other])
        .await
        .unwrap();
    for id in ["by-device", "by-type", "both"] {
        assert_eq!(sockets.received(id), vec![reading.message.clone()], "{id}");
    }
    assert!(sockets.received("alerts-only").is_empty());
    assert_eq!((summary.sent, summary.gone, summary.failed), (3, 1, 0));
    assert!(!connections.connections.lock().unwrap().contains_key("gone"));
    assert!(connections.connections.lock().unwrap().contains_key("both"));

    // Disconnected: no longer a subscriber.
    handle(
        &connections,
        &sockets,
        SocketEvent::Disconnect {
            connection_id: "both".into(),
        },
    )
    .await
    .unwrap();
    let summary = push(&connections, &sockets, &[reading]).await.unwrap();
    assert_eq!(summary.sent, 2);
}

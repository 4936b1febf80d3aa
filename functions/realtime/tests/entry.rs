//! The Lambda entries on real event shapes (fixtures of API Gateway's WebSocket events and
//! the DynamoDB and Kinesis stream events): the authorizer's policy, the socket route
//! events, and the pusher routing each batch by where it came from.

use base64::Engine as _;
use chrono::{TimeZone as _, Utc};
use hub_events::{
    DeviceContext, Envelope, NormalizedTelemetry, RolloutCounts, RolloutEvent, RolloutEventKind,
};
use jsonwebtoken::{encode, jwk::JwkSet, Algorithm, EncodingKey, Header};
use realtime::{
    channel::Channel,
    entry::{authorize, connections_endpoint, jwks_url, pusher_batch, socket_event},
    events::{Sources, Table},
    memory::{MemoryConnections, MemorySockets},
    ports::{Connection, Connections as _},
    socket::SocketEvent,
    token::{Role, Verifier},
};
use serde_json::{json, Value};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TESTPOOL";
const READINGS: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/hub-NormalizedStream";
const EVENTS: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/hub-AnomalyStream";
const ALERTS_TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/hub-AlertsTable-1XYZ";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn verifier() -> Verifier {
    let jwks: JwkSet = serde_json::from_str(&fixture("jwks.json")).unwrap();
    Verifier::from_jwks(&jwks, ISSUER, vec!["console-client".into()]).unwrap()
}

fn token(key: &str) -> String {
    let now = Utc::now().timestamp();
    let claims = json!({
        "sub": "5f0c", "iss": ISSUER, "token_use": "access", "client_id": "console-client",
        "scope": "hub/read hub/operate", "username": "olga", "iat": now, "exp": now + 600,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("pool-key-1".into());
    let key = EncodingKey::from_rsa_pem(fixture(key).as_bytes()).unwrap();
    encode(&header, &claims, &key).unwrap()
}

fn authorizer_request(token: Option<&str>) -> Value {
    let mut request: Value =
        serde_json::from_str(&fixture("apigw-websocket-authorizer-request.json")).unwrap();
    match token {
        Some(t) => {
            request["queryStringParameters"]["token"] = json!(t);
            request["multiValueQueryStringParameters"]["token"] = json!([t]);
        }
        None => {
            request["queryStringParameters"] = json!({});
            request["multiValueQueryStringParameters"] = json!({});
        }
    }
    request
}

fn answer(request: Value) -> Value {
    let request = serde_json::from_value(request).unwrap();
    serde_json::to_value(authorize(&verifier(), &request)).unwrap()
}

#[test]
fn the_authorizer_allows_a_pool_token_with_the_caller_in_the_context_and_denies_the_rest() {
    let allowed = answer(authorizer_request(Some(&token("test-only-pool-key.pem"))));
    let statement = &allowed["policyDocument"]["Statement"][0];
    assert_eq!(statement["Effect"], "Allow", "{allowed}");
    assert_eq!(
        statement["Resource"][0],
        "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/live/$connect"
    );
    assert_eq!(
        allowed["context"],
        json!({"subject": "olga", "role": "operator"})
    );
    assert_eq!(allowed["principalId"], "olga");

    for request in [
        authorizer_request(Some(&token("test-only-forger-key.pem"))),
        authorizer_request(None),
        authorizer_request(Some("not-a-jwt")),
    ] {
        let denied = answer(request);
        assert_eq!(
            denied["policyDocument"]["Statement"][0]["Effect"], "Deny",
            "{denied}"
        );
        assert_eq!(denied["context"], json!({}));
    }
}

fn socket(name: &str) -> SocketEvent {
    socket_event(&serde_json::from_str(&fixture(name)).unwrap()).unwrap()
}

#[test]
fn socket_route_events_become_connect_message_and_disconnect() {
    assert_eq!(
        socket("apigw-websocket-connect.json"),
        SocketEvent::Connect(Connection {
            connection_id: "XkTy2cHHIAMCFaQ=".into(),
            subject: "olga".into(),
            role: Role::Operator,
            connected_at: Utc.timestamp_millis_opt(1_796_281_200_000).unwrap(),
        })
    );
    assert_eq!(
        socket("apigw-websocket-message.json"),
        SocketEvent::Message {
            connection_id: "XkTy2cHHIAMCFaQ=".into(),
            body: r#"{"action":"subscribe","channels":["device:sensor-1","alerts"]}"#.into(),
        }
    );
    assert_eq!(
        socket("apigw-websocket-disconnect.json"),
        SocketEvent::Disconnect {
            connection_id: "XkTy2cHHIAMCFaQ=".into()
        }
    );
    // A $connect that did not come through the authorizer is refused.
    let mut bare: Value = serde_json::from_str(&fixture("apigw-websocket-connect.json")).unwrap();
    bare["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    assert!(socket_event(&serde_json::from_value(bare).unwrap()).is_err());
}

#[test]
fn endpoints_follow_aws_or_the_emulator() {
    assert_eq!(
        connections_endpoint("a1b2", "live", "eu-west-1", None),
        "https://a1b2.execute-api.eu-west-1.amazonaws.com/live"
    );
    assert_eq!(
        connections_endpoint("a1b2", "live", "eu-west-1", Some("http://127.0.0.1:4566/")),
        "http://127.0.0.1:4566/_aws/execute-api/a1b2/live"
    );
    assert_eq!(
        jwks_url(ISSUER, None),
        format!("{ISSUER}/.well-known/jwks.json")
    );
    assert_eq!(
        jwks_url(ISSUER, Some("http://127.0.0.1:4566")),
        "http://127.0.0.1:4566/us-east-1_TESTPOOL/.well-known/jwks.json"
    );
}

fn sources() -> Sources {
    Sources {
        readings_stream: READINGS.into(),
        events_stream: EVENTS.into(),
        tables: vec![(ALERTS_TABLE.into(), Table::Alerts)],
    }
}

fn kinesis(arn: &str, payloads: &[Vec<u8>]) -> Value {
    let records: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, data)| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0", "partitionKey": "sensor-1",
                    "sequenceNumber": format!("4954511524349098501828006771497314458218006259324420{i:04}"),
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1796281200.5
                },
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{i}"), "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-1", "eventSourceARN": arn
            })
        })
        .collect();
    json!({ "Records": records })
}

fn reading(device: &str, ms: i64, value: f64, simulated: bool) -> Vec<u8> {
    let ts = Utc.timestamp_millis_opt(ms).unwrap();
    Envelope::new(
        "normalizer",
        device,
        ts,
        NormalizedTelemetry {
            device_id: device.into(),
            seq: Some(ms as u64),
            ts,
            device_ts: ts,
            received_at: ts,
            clock_skew_ms: 0,
            clock_skew_corrected: false,
            metrics: [("temperature".to_owned(), value)].into(),
            units: [("temperature".to_owned(), "celsius".to_owned())].into(),
            status: "ok".into(),
            device: DeviceContext {
                device_type: Some("env-sensor".into()),
                group: Some("plant-a".into()),
                ..DeviceContext::default()
            },
        },
    )
    .simulated(simulated)
    .to_vec()
}

async fn subscribed(connections: &MemoryConnections, id: &str, channels: &[Channel]) {
    connections
        .open(&Connection {
            connection_id: id.into(),
            subject: id.into(),
            role: Role::Viewer,
            connected_at: Utc::now(),
        })
        .await
        .unwrap();
    connections.subscribe(id, channels, 50).await.unwrap();
}

#[tokio::test]
async fn readings_reach_their_device_type_and_group_subscribers_thinned_and_marked_simulated() {
    let (connections, sockets) = (MemoryConnections::default(), MemorySockets::default());
    subscribed(
        &connections,
        "by-device",
        &[Channel::Device("sensor-1".into())],
    )
    .await;
    subscribed(
        &connections,
        "by-group",
        &[Channel::Group("plant-a".into())],
    )
    .await;
    subscribed(&connections, "other", &[Channel::Device("sensor-9".into())]).await;
    // Ten readings in one second, one the next second, and a record that is no reading.
    let mut payloads: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            reading(
                "sensor-1",
                1_796_281_200_000 + i * 50,
                20.0 + i as f64,
                true,
            )
        })
        .collect();
    payloads.push(reading("sensor-1", 1_796_281_201_100, 40.0, true));
    payloads.push(b"{\"not\":\"a reading\"}".to_vec());
    let outcome = pusher_batch(
        &sources(),
        &connections,
        &sockets,
        kinesis(READINGS, &payloads),
    )
    .await
    .unwrap();
    assert_eq!(outcome.source, Some("readings"));
    assert_eq!(
        (outcome.records, outcome.coalesced, outcome.unreadable),
        (12, 9, 1)
    );
    for id in ["by-device", "by-group"] {
        let got = sockets.received(id);
        let values: Vec<&Value> = got.iter().map(|m| &m["metrics"]["temperature"]).collect();
        assert_eq!(values, [&json!(29.0), &json!(40.0)], "{id}: {got:?}");
        assert!(got
            .iter()
            .all(|m| m["type"] == "reading" && m["simulated"] == true));
        assert_eq!(got[0]["device_id"], "sensor-1");
        assert_eq!(got[0]["ts"], "2026-12-03T07:00:00.450Z");
    }
    assert!(sockets.received("other").is_empty());
}

#[tokio::test]
async fn a_batch_is_what_its_source_arn_says_never_what_its_records_claim() {
    let (connections, sockets) = (MemoryConnections::default(), MemorySockets::default());
    subscribed(
        &connections,
        "c-1",
        &[Channel::Device("sensor-1".into()), Channel::Rollouts],
    )
    .await;
    // A reading arriving from a stream the pusher is not wired to reaches no one...
    let foreign = "arn:aws:kinesis:us-east-1:123456789012:stream/hub-RawStream";
    let payload = reading("sensor-1", 1_796_281_200_000, 21.0, false);
    let outcome = pusher_batch(
        &sources(),
        &connections,
        &sockets,
        kinesis(foreign, std::slice::from_ref(&payload)),
    )
    .await
    .unwrap();
    assert_eq!((outcome.source, outcome.foreign), (None, 1));
    // ...and on the events stream it is not an event: nothing is pushed.
    let outcome = pusher_batch(
        &sources(),
        &connections,
        &sockets,
        kinesis(EVENTS, std::slice::from_ref(&payload)),
    )
    .await
    .unwrap();
    assert_eq!(outcome.unreadable, 1);
    assert!(sockets.received("c-1").is_empty());
    // Positive control: the same record from the readings stream is delivered.
    pusher_batch(
        &sources(),
        &connections,
        &sockets,
        kinesis(READINGS, &[payload]),
    )
    .await
    .unwrap();
    assert_eq!(sockets.received("c-1").len(), 1);

    // A rollout event on the events stream goes to rollout subscribers.
    let rollout = Envelope::new(
        "fleet",
        "ota-1",
        Utc::now(),
        RolloutEvent {
            kind: RolloutEventKind::Progress,
            rollout_id: "ota-1".into(),
            firmware_version: "2.0.0".into(),
            target: "plant-a".into(),
            counts: RolloutCounts {
                queued: 3,
                succeeded: 1,
                ..RolloutCounts::default()
            },
            reason: None,
        },
    )
    .to_vec();
    pusher_batch(
        &sources(),
        &connections,
        &sockets,
        kinesis(EVENTS, &[rollout]),
    )
    .await
    .unwrap();
    let got = sockets.received("c-1");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["type"], "rollout");
    assert_eq!(got[1]["event_type"], "iot.firmware.rollout.progress.v1");
    assert_eq!(got[1]["data"]["counts"]["succeeded"], 1);
}

#[tokio::test]
async fn alert_changes_from_the_table_stream_carry_the_api_fields_only() {
    let (connections, sockets) = (MemoryConnections::default(), MemorySockets::default());
    subscribed(&connections, "alerts", &[Channel::Alerts]).await;
    subscribed(
        &connections,
        "device",
        &[Channel::Device("sensor-1".into())],
    )
    .await;
    subscribed(&connections, "fleet", &[Channel::Fleet]).await;
    let batch: Value = serde_json::from_str(&fixture("dynamodb-stream-alerts.json")).unwrap();
    let outcome = pusher_batch(&sources(), &connections, &sockets, batch)
        .await
        .unwrap();
    assert_eq!(outcome.source, Some("alerts"));
    // The removal names no device: it reaches no channel and is not an error.
    assert_eq!(
        (outcome.records, outcome.unreadable, outcome.push.events),
        (2, 0, 1)
    );
    for id in ["alerts", "device"] {
        let got = sockets.received(id);
        assert_eq!(got.len(), 1, "{id}");
        assert_eq!(got[0]["type"], "alert");
        assert_eq!(got[0]["change"], "updated");
        let alert = &got[0]["alert"];
        assert_eq!(alert["state"], "acknowledged");
        assert_eq!(alert["acknowledged_by"], "olga");
        assert_eq!(alert["count"], 3);
        // Internal attributes stay in the table.
        assert!(alert.get("dedup_key").is_none() && alert.get("version").is_none());
    }
    assert!(sockets.received("fleet").is_empty());
}

//! Live events over the deployed WebSocket API on the local stack: `$connect` lets in only
//! a valid access token of the hub's pool, a subscribed client hears readings, detections,
//! alert changes, registry changes and rollout events as they happen, and connections that
//! are closed or gone leave no record behind.
//!
//! What a client should hear is checked against what the test itself sent (readings over
//! HTTP ingest, an acknowledgement through the admin API, a rollout event on the events
//! stream), never against the pusher's own counters.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use hub_detection::{rules_table::DynamoRules, RuleScope, ThresholdRule};
use hub_e2e::{
    admin::Role,
    http_device::HttpDevice,
    live::{self, Refused, Socket},
    unique, Stack,
};
use hub_events::{Envelope, RolloutCounts, RolloutEvent, RolloutEventKind, Severity};
use serde_json::{json, Value};

/// Opens a socket, or the HTTP status the upgrade was refused with.
async fn open(stack: &Stack, token: Option<&str>) -> Result<Socket, u16> {
    match live::open(stack, token).await {
        Ok(socket) => Ok(socket),
        Err(Refused::Status(status)) => Err(status),
        Err(Refused::Failed(other)) => panic!("connecting failed otherwise: {other}"),
    }
}

/// Held while the expiry test has the viewer client issuing one-second tokens, so the
/// other tests in this binary never receive one.
static TOKEN_SETTINGS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn token(stack: &Stack, role: Role) -> String {
    let _settled = TOKEN_SETTINGS.lock().await;
    stack.admin_client(role).unwrap().token().await.unwrap()
}

async fn until(
    socket: &mut Socket,
    what: &str,
    wait: Duration,
    want: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    live::until(socket, what, wait, want).await.unwrap()
}

async fn subscribe(socket: &mut Socket, channels: &[&str]) -> Value {
    live::subscribe(socket, channels).await.unwrap()
}

fn claims(token: &str) -> Value {
    hub_e2e::jwt_claims(token)
}

/// The pool's own token with its claims raised to admin, its signature left as it was.
fn forged(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut raised = claims(token);
    raised["scope"] = json!("hub/read hub/operate hub/admin");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raised.to_string());
    parts.join(".")
}

async fn connection_record(stack: &Stack, id: &str) -> Option<Value> {
    aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .get_item()
        .table_name(stack.output("RealtimeConnectionsTableName"))
        .key("connection_id", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .map(|item| json!(item.keys().cloned().collect::<Vec<_>>()))
}

/// Connection ids in the table subscribed to `channel`.
async fn subscribers(stack: &Stack, channel: &str) -> Vec<String> {
    let items = aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .scan()
        .table_name(stack.output("RealtimeConnectionsTableName"))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    items
        .into_iter()
        .filter(|item| {
            item.get("channels")
                .and_then(|c| c.as_ss().ok())
                .is_some_and(|c| c.iter().any(|c| c == channel))
        })
        .filter_map(|item| item.get("connection_id")?.as_s().ok().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_lets_in_a_pool_token_and_refuses_none_forged_expired_and_foreign() {
    let stack = Stack::from_env().await.unwrap();
    let operator = token(&stack, Role::Operator).await;

    // Positive control: the pool's operator token is let in and its frames answered.
    let mut socket = open(&stack, Some(&operator))
        .await
        .expect("a valid token connects");
    let answer = subscribe(&mut socket, &["alerts"]).await;
    assert_eq!(
        answer,
        json!({"type": "subscribed", "channels": ["alerts"]})
    );
    socket.close(None).await.unwrap();

    let no_token = open(&stack, None).await.err();
    let empty = open(&stack, Some("")).await.err();
    let garbage = open(&stack, Some("not-a-jwt")).await.err();
    let forged = open(&stack, Some(&forged(&operator))).await.err();
    for (what, refused) in [
        ("no token", no_token),
        ("empty token", empty),
        ("garbage", garbage),
        ("forged claims", forged),
    ] {
        assert!(matches!(refused, Some(401 | 403)), "{what}: {refused:?}");
    }

    // A token of another pool with the same scopes and a client of its own.
    let other = stack
        .cognito("CreateUserPool", &json!({"PoolName": unique("other-pool")}))
        .await
        .unwrap();
    let pool_id = other["UserPool"]["Id"].as_str().unwrap().to_owned();
    stack
        .cognito(
            "CreateResourceServer",
            &json!({"UserPoolId": pool_id, "Identifier": "hub", "Name": "hub",
                    "Scopes": [{"ScopeName": "read", "ScopeDescription": "read"},
                               {"ScopeName": "operate", "ScopeDescription": "operate"}]}),
        )
        .await
        .unwrap();
    let client = stack
        .cognito(
            "CreateUserPoolClient",
            &json!({"UserPoolId": pool_id, "ClientName": "intruder", "GenerateSecret": true,
                    "AllowedOAuthFlowsUserPoolClient": true,
                    "AllowedOAuthFlows": ["client_credentials"],
                    "AllowedOAuthScopes": ["hub/read", "hub/operate"]}),
        )
        .await
        .unwrap();
    let mut settings = stack.admin_settings(Role::Operator).unwrap();
    settings.client_id = client["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .into();
    settings.client_secret = client["UserPoolClient"]["ClientSecret"]
        .as_str()
        .unwrap()
        .into();
    let foreign = hub_admin::AdminClient::new(settings)
        .unwrap()
        .token()
        .await
        .unwrap();
    assert!(claims(&foreign)["iss"]
        .as_str()
        .unwrap()
        .ends_with(&pool_id));
    let refused = open(&stack, Some(&foreign)).await.err();
    stack
        .cognito("DeleteUserPool", &json!({"UserPoolId": pool_id}))
        .await
        .unwrap();
    assert!(
        matches!(refused, Some(401 | 403)),
        "other pool: {refused:?}"
    );

    // An expired token: the viewer client issues one-second tokens for a moment. The same
    // token is let in while fresh and refused once past its expiry (and the check's 5 s
    // leeway).
    let viewer = stack.admin_settings(Role::Viewer).unwrap();
    let pool = stack.output("AdminUserPoolId");
    let validity = |value: u64, unit: &str| {
        json!({"UserPoolId": pool, "ClientId": viewer.client_id,
               "AccessTokenValidity": value, "TokenValidityUnits": {"AccessToken": unit}})
    };
    let shortened = TOKEN_SETTINGS.lock().await;
    stack
        .cognito("UpdateUserPoolClient", &validity(1, "seconds"))
        .await
        .unwrap();
    let short = hub_admin::AdminClient::new(viewer.clone())
        .unwrap()
        .token()
        .await;
    stack
        .cognito("UpdateUserPoolClient", &validity(60, "minutes"))
        .await
        .unwrap();
    drop(shortened);
    let short = short.unwrap();
    let exp = claims(&short)["exp"].as_i64().unwrap();
    assert!(
        exp <= chrono::Utc::now().timestamp() + 2,
        "not a short token"
    );
    let fresh = open(&stack, Some(&short)).await;
    assert!(
        fresh.is_ok(),
        "the short token while fresh: {:?}",
        fresh.err()
    );
    let wait = (exp + 7 - chrono::Utc::now().timestamp()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let expired = open(&stack, Some(&short)).await.err();
    assert!(matches!(expired, Some(401 | 403)), "expired: {expired:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_hears_readings_detections_alert_changes_registry_changes_and_rollouts() {
    let stack = Stack::from_env().await.unwrap();
    let device_type = unique("live-type");
    let device_id = unique("live-sensor");
    let mut socket = open(&stack, Some(&token(&stack, Role::Viewer).await))
        .await
        .unwrap();
    let rollout_id = unique("ota");
    let device_channel = format!("device:{device_id}");
    let rollout_channel = format!("rollout:{rollout_id}");
    let answer = subscribe(
        &mut socket,
        &[&device_channel, "alerts", "fleet", &rollout_channel],
    )
    .await;
    assert_eq!(answer["type"], "subscribed", "{answer}");

    // Registering the device is a registry change the fleet channel hears of.
    let rule = ThresholdRule::new(
        unique("hot"),
        RuleScope::DeviceType(device_type.clone()),
        "temperature > 80",
        Severity::Critical,
    )
    .unwrap();
    DynamoRules {
        client: aws_sdk_dynamodb::Client::new(&stack.aws.sdk),
        table: stack.output("AlertRulesTableName").to_owned(),
    }
    .put(&rule)
    .await
    .unwrap();
    let device = HttpDevice::register(&stack, &device_id, &device_type)
        .await
        .unwrap();
    let (registered, _) = until(
        &mut socket,
        "registry change",
        Duration::from_secs(20),
        |f| f["type"] == "device" && f["device"]["device_id"] == device_id.as_str(),
    )
    .await;
    assert_eq!(registered["device"]["device_type"], device_type.as_str());
    // The detector reads rules at most every 2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A reading with a value of the test's choosing arrives with that value.
    let now = chrono::Utc::now();
    let reading = |seq: u64, at: chrono::DateTime<chrono::Utc>, t: f64| {
        json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": at.to_rfc3339(),
               "metrics": {"temperature": t}, "status": "OK", "simulated": true})
    };
    let sent = Instant::now();
    let (status, body) = device
        .post(serde_json::to_vec(&json!([reading(1, now, 21.25)])).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let (pushed, latency) = until(&mut socket, "the reading", Duration::from_secs(20), |f| {
        f["type"] == "reading" && f["device_id"] == device_id.as_str()
    })
    .await;
    assert_eq!(pushed["metrics"]["temperature"], 21.25);
    assert_eq!(pushed["seq"], 1);
    assert_eq!(pushed["simulated"], true);
    println!(
        "http ingest -> socket: {:.0} ms",
        latency.as_secs_f64() * 1000.0
    );
    let _ = sent;

    // Two hot readings: a detection, then the alert raised for it.
    let hot = [
        reading(2, now + chrono::TimeDelta::seconds(1), 91.0),
        reading(3, now + chrono::TimeDelta::seconds(2), 92.0),
    ];
    let (status, body) = device
        .post(serde_json::to_vec(&json!(hot)).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let (detection, _) = until(&mut socket, "a detection", Duration::from_secs(30), |f| {
        f["type"] == "detection" && f["data"]["device_id"] == device_id.as_str()
    })
    .await;
    assert_eq!(detection["data"]["rule_id"], rule.id.as_str());
    assert!(detection["data"]["value"].as_f64().unwrap() > 80.0);
    let (raised, _) = until(&mut socket, "the alert", Duration::from_secs(30), |f| {
        f["type"] == "alert" && f["alert"]["device_id"] == device_id.as_str()
    })
    .await;
    let alert_id = raised["alert"]["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(raised["alert"]["rule_id"], rule.id.as_str());

    // Acknowledged through the admin API: the change arrives, naming who did it.
    let operator = stack.admin_client(Role::Operator).unwrap();
    operator
        .post(&format!("/v1/alerts/{alert_id}/ack"), &json!({}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let (acked, _) = until(
        &mut socket,
        "the acknowledgement",
        Duration::from_secs(20),
        |f| {
            f["type"] == "alert"
                && f["alert"]["alert_id"] == alert_id.as_str()
                && f["alert"]["state"] == "acknowledged"
        },
    )
    .await;
    assert!(acked["alert"]["acknowledged_by"]
        .as_str()
        .is_some_and(|b| !b.is_empty()));

    // A rollout event, as the fleet function writes them to the events stream.
    let event = Envelope::new(
        "fleet",
        rollout_id.as_str(),
        chrono::Utc::now(),
        RolloutEvent {
            kind: RolloutEventKind::Progress,
            rollout_id: rollout_id.clone(),
            firmware_version: "9.9.9".into(),
            target: "plant-a".into(),
            counts: RolloutCounts {
                queued: 2,
                succeeded: 1,
                ..RolloutCounts::default()
            },
            reason: None,
        },
    );
    stack
        .kinesis()
        .put_record()
        .stream_name(stack.output("AnomalyStreamName"))
        .partition_key(&rollout_id)
        .data(aws_sdk_kinesis::primitives::Blob::new(event.to_vec()))
        .send()
        .await
        .unwrap();
    let (progress, _) = until(
        &mut socket,
        "the rollout event",
        Duration::from_secs(20),
        |f| f["type"] == "rollout" && f["data"]["rollout_id"] == rollout_id.as_str(),
    )
    .await;
    assert_eq!(progress["event_type"], "iot.firmware.rollout.progress.v1");
    assert_eq!(progress["data"]["counts"]["succeeded"], 1);
    socket.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_and_gone_connections_leave_no_record() {
    let stack = Stack::from_env().await.unwrap();
    let device_id = unique("gone-sensor");
    let channel = format!("device:{device_id}");

    // A client that closes: its record goes with $disconnect.
    let mut closing = open(&stack, Some(&token(&stack, Role::Viewer).await))
        .await
        .unwrap();
    subscribe(&mut closing, &[&channel]).await;
    let mut listening = open(&stack, Some(&token(&stack, Role::Viewer).await))
        .await
        .unwrap();
    subscribe(&mut listening, &[&channel]).await;
    let held = subscribers(&stack, &channel).await;
    assert_eq!(held.len(), 2, "both connections recorded: {held:?}");
    closing.close(None).await.unwrap();
    drop(closing);
    let deadline = Instant::now() + Duration::from_secs(20);
    let survivor = loop {
        let held = subscribers(&stack, &channel).await;
        if held.len() == 1 {
            break held[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "closed connection still recorded: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // A record whose socket is gone (API Gateway lost it without a $disconnect): the next
    // push to it gets 410, and the record is removed; the live client still hears.
    let ghost = format!("{}=", unique("ghost").replace('-', ""));
    let expires = chrono::Utc::now().timestamp() + 3600;
    aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .put_item()
        .table_name(stack.output("RealtimeConnectionsTableName"))
        .item("connection_id", AttributeValue::S(ghost.clone()))
        .item("subject", AttributeValue::S("ghost".into()))
        .item("role", AttributeValue::S("viewer".into()))
        .item(
            "connected_at",
            AttributeValue::S(chrono::Utc::now().to_rfc3339()),
        )
        .item("expires_at", AttributeValue::N(expires.to_string()))
        .item("channels", AttributeValue::Ss(vec![channel.clone()]))
        .send()
        .await
        .unwrap();
    assert!(connection_record(&stack, &ghost).await.is_some());
    let device = HttpDevice::register(&stack, &device_id, "gone-type")
        .await
        .unwrap();
    let (status, body) = device
        .post(
            serde_json::to_vec(&json!([{"v": 2, "seq": 1, "msg_type": "telemetry",
                "ts": chrono::Utc::now().to_rfc3339(), "metrics": {"temperature": 20.5},
                "status": "OK"}]))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    until(
        &mut listening,
        "the reading",
        Duration::from_secs(20),
        |f| f["type"] == "reading" && f["device_id"] == device_id.as_str(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while connection_record(&stack, &ghost).await.is_some() {
        assert!(Instant::now() < deadline, "gone connection still recorded");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        connection_record(&stack, &survivor).await.is_some(),
        "the live connection's record must stay"
    );
    listening.close(None).await.unwrap();
}

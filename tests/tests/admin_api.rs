//! The admin API through the emulator's API Gateway, with tokens from its Cognito:
//! authorizer refusals, the device lifecycle from registration to decommissioning with a
//! real certificate on Mosquitto, rotation with a grace period, quarantine, history
//! queries, and the alert API.

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{TimeDelta, Utc};
use hub_admin::AdminClient;
use hub_e2e::{
    accounting,
    admin::{certificate, provision, Role},
    http_device::HttpDevice,
    unique, Stack,
};
use hub_mqtt::ClientIdentity;
use reqwest::Method;
use rumqttc::QoS;
use serde_json::{json, Value};

async fn can_connect(stack: &Stack, id: &str, identity: &ClientIdentity) -> bool {
    match stack.connect(&unique(id), Some(identity)).await {
        Ok((client, _events)) => {
            let _ = client.disconnect().await;
            true
        }
        Err(_) => false,
    }
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn publish(stack: &Stack, id: &str, identity: &ClientIdentity, seqs: std::ops::Range<u64>) {
    let (client, events) = stack.connect(&unique(id), Some(identity)).await.unwrap();
    let _incoming = hub_e2e::drive(events);
    let now = Utc::now();
    for seq in seqs.clone() {
        let ts = now - TimeDelta::seconds((seqs.end - seq) as i64);
        let payload = json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": ts.to_rfc3339(),
                             "metrics": {"temperature": 20.0 + seq as f64 / 10.0}, "status": "OK"});
        client
            .publish(
                format!("devices/{id}/telemetry"),
                QoS::AtLeastOnce,
                false,
                payload.to_string(),
            )
            .await
            .unwrap();
    }
    // QoS 1: give the broker time to ack before the connection goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = client.disconnect().await;
}

async fn points_in_range(viewer: &AdminClient, id: &str) -> u64 {
    let start = (Utc::now() - TimeDelta::minutes(30)).timestamp_millis();
    let end = (Utc::now() + TimeDelta::minutes(1)).timestamp_millis();
    let reply = viewer
        .get(&format!(
            "/v1/query?device_id={id}&metric=temperature&start={start}&end={end}&max_points=100"
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["points_in_range"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_forged_expired_and_underprivileged_tokens_change_nothing() {
    let stack = Stack::from_env().await.unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let id = unique("auth");
    let created = operator
        .post(
            "/v1/devices",
            &json!({"device_id": id, "device_type": "env-sensor"}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let quarantine = format!("/v1/devices/{id}/quarantine");
    let newcomer = json!({"device_id": unique("never"), "device_type": "env-sensor"});

    // No token, or not a JWT: 401 from the authorizer, on reads and changes alike.
    for token in [None, Some("not-a-jwt"), Some("a.b.c")] {
        for (method, path, body) in [
            (Method::GET, "/v1/devices".to_owned(), None),
            (Method::POST, "/v1/devices".to_owned(), Some(&newcomer)),
            (Method::PUT, quarantine.clone(), None),
        ] {
            let reply = operator
                .call_with_token(method.clone(), &path, body, token)
                .await
                .unwrap();
            assert_eq!(
                reply.status, 401,
                "{method} {path} with {token:?}: {}",
                reply.body
            );
        }
    }

    // A real token with its claims rewritten to grant more: the signature no longer holds.
    let token = viewer.token().await.unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("hub/read hub/operate hub/admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let reply = viewer
        .call_with_token(Method::PUT, &quarantine, None, Some(&forged))
        .await
        .unwrap();
    assert_eq!(reply.status, 401, "{}", reply.body);

    // Valid tokens of too small a role: 403, from the authorizer's scope check.
    for (client, method, path, body) in [
        (
            &viewer,
            Method::POST,
            "/v1/devices".to_owned(),
            Some(newcomer.clone()),
        ),
        (&viewer, Method::PUT, quarantine.clone(), None),
        (
            &viewer,
            Method::POST,
            "/v1/alerts".to_owned(),
            Some(json!({"device_id": id, "rule": "temperature > 1"})),
        ),
        (
            &operator,
            Method::POST,
            format!("/v1/devices/{id}/certificates"),
            Some(json!({"csr": hub_mqtt::key_and_csr(&id).unwrap().1})),
        ),
        (
            &operator,
            Method::POST,
            format!("/v1/devices/{id}/api-keys"),
            Some(json!({})),
        ),
        (&operator, Method::DELETE, format!("/v1/devices/{id}"), None),
    ] {
        let reply = client
            .call(method.clone(), &path, body.as_ref())
            .await
            .unwrap();
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
    }

    // An expired token: the viewer client's tokens made to last two seconds.
    let pool = stack.output("AdminUserPoolId");
    let client_id = stack.output("ViewerClientId");
    let settings = |seconds: u64, unit: &str| {
        json!({"UserPoolId": pool, "ClientId": client_id, "ClientName": "iothub-viewer",
               "AllowedOAuthFlowsUserPoolClient": true, "AllowedOAuthFlows": ["client_credentials"],
               "AllowedOAuthScopes": ["hub/read"], "AccessTokenValidity": seconds,
               "TokenValidityUnits": {"AccessToken": unit}})
    };
    stack
        .cognito("UpdateUserPoolClient", &settings(2, "seconds"))
        .await
        .unwrap();
    let short_lived = stack.admin_client(Role::Viewer).unwrap();
    let token = short_lived.token().await.unwrap();
    stack
        .cognito("UpdateUserPoolClient", &settings(60, "minutes"))
        .await
        .unwrap();
    let fresh = short_lived
        .call_with_token(Method::GET, "/v1/devices?limit=1", None, Some(&token))
        .await
        .unwrap();
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = short_lived
        .call_with_token(Method::GET, "/v1/devices?limit=1", None, Some(&token))
        .await
        .unwrap();
    assert_eq!(expired.status, 401, "{}", expired.body);

    // Nothing changed: the device is as registered, the newcomer never existed.
    let device = viewer
        .get(&format!("/v1/devices/{id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(device["quarantined"], false);
    assert_eq!(device["status"], "registered");
    assert_eq!(device["created_at"], device["updated_at"]);
    let never = viewer
        .get(&format!(
            "/v1/devices/{}",
            newcomer["device_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(never.status, 404, "{}", never.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_json_4xx_naming_the_problem() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let id = unique("bad-input");
    for (method, path, body, status, field) in [
        (
            Method::POST,
            "/v1/devices".to_owned(),
            json!({"device_id": id}),
            400,
            Some("device_type"),
        ),
        (
            Method::POST,
            "/v1/devices".to_owned(),
            json!({"device_id": "a/b", "device_type": "t"}),
            400,
            Some("device_id"),
        ),
        (
            Method::POST,
            "/v1/devices".to_owned(),
            json!([1, 2]),
            400,
            None,
        ),
        (
            Method::POST,
            "/v1/devices".to_owned(),
            json!({"device_id": id, "device_type": "t", "x": 1}),
            400,
            Some("x"),
        ),
        (
            Method::POST,
            "/v1/devices".to_owned(),
            json!({"device_id": id, "device_type": "t", "location": "x".repeat(70_000)}),
            413,
            None,
        ),
        (
            Method::GET,
            "/v1/query?device_id=x&metric=temperature&start=1&end=0".to_owned(),
            Value::Null,
            400,
            Some("end"),
        ),
        (
            Method::GET,
            "/v1/devices?limit=1000".to_owned(),
            Value::Null,
            400,
            Some("limit"),
        ),
        (
            Method::GET,
            format!("/v1/devices/{id}"),
            Value::Null,
            404,
            None,
        ),
        (
            Method::POST,
            "/v1/alerts/nope/ack".to_owned(),
            Value::Null,
            404,
            None,
        ),
    ] {
        let body = (!body.is_null()).then_some(&body);
        let reply = admin.call(method.clone(), &path, body).await.unwrap();
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        assert!(
            reply.body["error"]["message"].is_string(),
            "{method} {path}: {}",
            reply.body
        );
        if let Some(field) = field {
            assert_eq!(
                reply.body["error"]["field"],
                json!(field),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_from_registration_to_decommissioning() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let id = unique("life");
    let (device, identity) = provision(&admin, &id, "env-sensor").await;
    assert_eq!(device["status"], "registered");
    let row = viewer
        .get(&format!("/v1/devices/{id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(row["status"], "active");

    // Its own certificate, through Mosquitto and the pipeline, to the history query.
    publish(&stack, &id, &identity, 1..21).await;
    wait_until(
        "20 readings queryable",
        Duration::from_secs(90),
        async || points_in_range(&viewer, &id).await == 20,
    )
    .await;

    // The newest reading is the last one published (seq 20, 22.0 °C), from the latest
    // table (written just after the hot-store rows); a real device's answers carry no
    // simulation mark.
    wait_until(
        "the latest reading is seq 20",
        Duration::from_secs(30),
        async || {
            let reply = viewer
                .get(&format!("/v1/devices/{id}/latest"))
                .await
                .unwrap();
            reply.status == 200 && reply.body["seq"] == 20
        },
    )
    .await;
    let latest = viewer
        .get(&format!("/v1/devices/{id}/latest"))
        .await
        .unwrap();
    assert_eq!(latest.data_source, None);
    let latest = latest.ok().unwrap();
    assert_eq!(latest["seq"], 20, "{latest}");
    assert_eq!(latest["metrics"]["temperature"], 22.0, "{latest}");
    // The list carries it too, on whichever page the device is.
    let mut listed = None;
    let mut next: Option<String> = None;
    while listed.is_none() {
        let path = match &next {
            Some(token) => format!("/v1/devices?include=latest&limit=100&next_token={token}"),
            None => "/v1/devices?include=latest&limit=100".to_owned(),
        };
        let page = viewer.get(&path).await.unwrap().ok().unwrap();
        listed = page["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == id.as_str())
            .cloned();
        match page["next_token"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    let listed = listed.expect("the device is listed");
    assert_eq!(listed["latest"]["seq"], 20, "{listed}");

    // Quarantined: its messages are dropped and counted, nothing is stored.
    let since = accounting::now_ms();
    let on = operator
        .put(&format!("/v1/devices/{id}/quarantine"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(on["quarantined"], true);
    // The normalizer reads the registry again after at most 2 s locally.
    tokio::time::sleep(Duration::from_secs(3)).await;
    publish(&stack, &id, &identity, 21..31).await;
    // Only this test quarantines devices, so the count is this device's.
    wait_until(
        "10 quarantined drops counted",
        Duration::from_secs(90),
        async || {
            let counts = accounting::read_since(&stack, since).await.unwrap();
            counts.dropped.get("quarantined").copied().unwrap_or(0) >= 10
        },
    )
    .await;
    let counts = accounting::read_since(&stack, since).await.unwrap();
    assert_eq!(counts.dropped.get("quarantined"), Some(&10), "{counts:?}");
    assert_eq!(points_in_range(&viewer, &id).await, 20);

    // Released: readings flow again.
    let off = operator
        .delete(&format!("/v1/devices/{id}/quarantine"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(off["quarantined"], false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    publish(&stack, &id, &identity, 31..36).await;
    wait_until(
        "released readings stored",
        Duration::from_secs(90),
        async || points_in_range(&viewer, &id).await == 25,
    )
    .await;

    // Decommissioned: certificate and API key refused, thing gone, history kept.
    let key = admin
        .post(&format!("/v1/devices/{id}/api-keys"), &json!({}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let http = HttpDevice::with_key(&stack, &id, key["api_key"].as_str().unwrap());
    let reading = json!({"v": 2, "seq": 99, "msg_type": "telemetry", "ts": Utc::now().to_rfc3339(),
                         "metrics": {"temperature": 21.0}});
    assert_eq!(http.post(reading.to_string()).await.unwrap().0, 202);
    let gone = admin
        .delete(&format!("/v1/devices/{id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(gone["status"], "decommissioned");
    wait_until(
        "decommissioned certificate refused",
        Duration::from_secs(30),
        async || !can_connect(&stack, &id, &identity).await,
    )
    .await;
    assert_eq!(http.post(reading.to_string()).await.unwrap().0, 401);
    let thing = stack.iot().describe_thing().thing_name(&id).send().await;
    assert!(thing.is_err(), "the thing still exists");
    let certificates = viewer
        .get(&format!("/v1/devices/{id}/certificates"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(certificates["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "revoked"));
    let row = viewer
        .get(&format!("/v1/devices/{id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(row["status"], "decommissioned");
    assert!(points_in_range(&viewer, &id).await >= 25);

    // The audit log, read back from its table, holds this device's changes newest first,
    // each with who made it and how it ended; viewers and operators may not read it.
    let mut actions = Vec::new();
    let mut next: Option<String> = None;
    // One window for every page, so a listing that crosses midnight keeps its tokens valid.
    let today = Utc::now().date_naive();
    let window = format!("since={}&until={today}", today - TimeDelta::days(1));
    loop {
        let path = match &next {
            Some(token) => format!("/v1/audit?{window}&limit=100&next_token={token}"),
            None => format!("/v1/audit?{window}&limit=100"),
        };
        let page = admin.get(&path).await.unwrap().ok().unwrap();
        for entry in page["entries"].as_array().unwrap() {
            if entry["target"] == id.as_str() {
                actions.push((
                    entry["action"].as_str().unwrap().to_owned(),
                    entry["outcome"].as_str().unwrap().to_owned(),
                ));
            }
        }
        match page["next_token"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    let expected: Vec<(String, String)> = [
        "DELETE /v1/devices/{id}",
        "POST /v1/devices/{id}/api-keys",
        "DELETE /v1/devices/{id}/quarantine",
        "PUT /v1/devices/{id}/quarantine",
    ]
    .iter()
    .map(|a| (a.to_string(), "done".to_owned()))
    .collect();
    assert_eq!(&actions[..4], &expected[..], "{actions:?}");
    assert!(
        actions.iter().any(|(a, _)| a == "POST /v1/devices"),
        "{actions:?}"
    );
    assert_eq!(viewer.get("/v1/audit").await.unwrap().status, 403);
    assert_eq!(operator.get("/v1/audit").await.unwrap().status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_certificate_works_through_its_grace_and_is_refused_after() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let id = unique("rotate");
    let (_, old) = provision(&admin, &id, "power-meter").await;
    assert!(can_connect(&stack, &id, &old).await);
    let new = certificate(
        &admin,
        &id,
        "certificates/rotate",
        json!({"grace_seconds": 5}),
    )
    .await;
    // Both work during the grace period.
    assert!(can_connect(&stack, &id, &new).await);
    assert!(can_connect(&stack, &id, &old).await);
    // The sweeper runs every minute locally; the broker's CRL follows the IoT status.
    let rotated = Instant::now();
    wait_until(
        "old certificate refused after its grace",
        Duration::from_secs(150),
        async || !can_connect(&stack, &id, &old).await,
    )
    .await;
    assert!(
        rotated.elapsed() >= Duration::from_secs(5),
        "refused before the grace ended"
    );
    assert!(can_connect(&stack, &id, &new).await);
    let listed = admin
        .get(&format!("/v1/devices/{id}/certificates"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let states: Vec<&str> = listed["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"active"), "{states:?}");
    assert!(
        states.iter().any(|s| *s == "inactive" || *s == "revoked"),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_rules_made_through_the_api_raise_alerts_operators_acknowledge_and_resolve() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let device_type = unique("boiler");
    let rule = operator
        .post("/v1/alerts", &json!({"device_type": device_type, "rule": "temperature > 80", "severity": "critical"}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let rule_id = rule["rule_id"].as_str().unwrap().to_owned();
    let id = unique("boiler");
    let device = hub_e2e::admin::http_device(&stack, &admin, &id, &device_type)
        .await
        .unwrap();
    // The detector reads rules at most every 2 s, the normalizer the registry too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // 40 normal readings, then a hot run that does not clear: the alert stays open.
    let readings = hub_e2e::admin::warm_then_hot(40, 6, 95.0);
    let (status, body) = device
        .post(serde_json::to_vec(&readings).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");

    let mut alert = Value::Null;
    wait_until(
        "the rule's alert listed",
        Duration::from_secs(120),
        async || {
            let page = viewer
                .get(&format!("/v1/alerts?device_id={id}"))
                .await
                .unwrap()
                .ok()
                .unwrap();
            match page["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["rule_id"] == json!(rule_id))
            {
                Some(found) => {
                    alert = found.clone();
                    true
                }
                None => false,
            }
        },
    )
    .await;
    assert_eq!(alert["state"], "open", "{alert}");
    assert_eq!(alert["severity"], "critical");
    let alert_id = alert["alert_id"].as_str().unwrap().to_owned();

    let refused = viewer
        .post(&format!("/v1/alerts/{alert_id}/ack"), &json!({}))
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    let acked = operator
        .post(&format!("/v1/alerts/{alert_id}/ack"), &json!({}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(
        acked["acknowledged_by"],
        json!(stack.env["HUB_OPERATOR_CLIENT_ID"])
    );
    let resolved = operator
        .post(&format!("/v1/alerts/{alert_id}/resolve"), &json!({}))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(resolved["state"], "resolved");
    let again = operator
        .post(&format!("/v1/alerts/{alert_id}/ack"), &json!({}))
        .await
        .unwrap();
    assert_eq!(again.status, 409, "{}", again.body);
    let listed = viewer
        .get(&format!("/v1/alerts?state=resolved&device_id={id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(listed["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["alert_id"] == json!(alert_id)));

    let rules = viewer.get("/v1/rules").await.unwrap().ok().unwrap();
    assert!(rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule_id"] == json!(rule_id)));
    operator
        .delete(&format!("/v1/rules/{rule_id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let rules = viewer.get("/v1/rules").await.unwrap().ok().unwrap();
    assert!(!rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule_id"] == json!(rule_id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn connectivity_and_last_seen_follow_the_device() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let id = unique("presence");
    let (_, identity) = provision(&admin, &id, "env-sensor").await;
    let row = viewer
        .get(&format!("/v1/devices/{id}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(row.get("connectivity").is_none(), "{row}");

    let connected_at = Utc::now();
    let (client, events) = stack.connect(&id, Some(&identity)).await.unwrap();
    let _incoming = hub_e2e::drive(events);
    let row = async |state: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row = viewer
                .get(&format!("/v1/devices/{id}"))
                .await
                .unwrap()
                .ok()
                .unwrap();
            if row["connectivity"] == state {
                return row;
            }
            assert!(Instant::now() < deadline, "not {state} within 30 s: {row}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let seen = row("connected").await;
    let last_seen: chrono::DateTime<Utc> = seen["last_seen"].as_str().unwrap().parse().unwrap();
    assert!(last_seen >= connected_at - TimeDelta::seconds(2), "{seen}");

    client.disconnect().await.unwrap();
    let seen = row("disconnected").await;
    let gone: chrono::DateTime<Utc> = seen["last_seen"].as_str().unwrap().parse().unwrap();
    assert!(gone >= last_seen, "{seen}");
}

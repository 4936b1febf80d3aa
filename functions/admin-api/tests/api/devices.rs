//! Registration, listing, roles and the audit trail, API Gateway events.

use admin_api::{
    auth::{Principal, Role},
    http::api_request,
    routes, ApiRequest,
};
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn registration_creates_the_thing_and_the_row_once() {
    let api = api();
    let created = register(&api, "sensor-1").await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "registered");
    assert_eq!(created.body["group"], "plant-a");
    let iot = api.backend.iot.lock().unwrap().things.clone();
    assert_eq!(
        iot.get("sensor-1"),
        Some(&("env-sensor".to_owned(), Some("plant-a".to_owned())))
    );
    drop(iot);
    assert_error(&register(&api, "sensor-1").await, 409, None);
    let got = api
        .viewer()
        .get("/v1/devices/sensor-1")
        .await
        .expect_status(200);
    assert_eq!(got.body["device_type"], "env-sensor");
    assert_error(&api.viewer().get("/v1/devices/nope").await, 404, None);
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_change_nothing() {
    let api = api();
    let cases = [
        (json!({"device_type": "env-sensor"}), "device_id"),
        (
            json!({"device_id": "a.b", "device_type": "env-sensor"}),
            "device_id",
        ),
        (
            json!({"device_id": "a", "device_type": "Env Sensor"}),
            "device_type",
        ),
        (
            json!({"device_id": 7, "device_type": "env-sensor"}),
            "device_id",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "colour": "red"}),
            "colour",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "location": "x".repeat(300)}),
            "location",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "group": "has space"}),
            "group",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "serial": "  "}),
            "serial",
        ),
        // An optional field is absent or has a value; the document allows no null.
        (
            json!({"device_id": "a", "device_type": "t", "serial": null}),
            "serial",
        ),
        // The local stack's bridge connects as hub-local-bridge, with every topic.
        (
            json!({"device_id": "hub-local-bridge", "device_type": "t"}),
            "device_id",
        ),
    ];
    for (body, field) in cases {
        let response = api.operator().post("/v1/devices", body.clone()).await;
        assert_eq!(response.status, 400, "{body} -> {}", response.body);
        if field != "." {
            assert_eq!(response.body["error"]["field"], json!(field), "{body}");
        }
    }
    // Not JSON at all, and trailing garbage.
    for raw in [
        "{",
        "not json",
        "{\"device_id\":\"a\",\"device_type\":\"t\"} x",
    ] {
        let (route, _) = routes::resolve("POST", "/v1/devices").unwrap();
        let request = ApiRequest {
            route,
            params: Default::default(),
            query: Default::default(),
            body: raw.as_bytes().to_vec(),
            principal: Principal {
                subject: "op".into(),
                role: Role::Operator,
            },
            request_id: "r".into(),
        };
        assert_error(&api.handle(&request).await, 400, None);
    }
    assert!(api.backend.devices.lock().unwrap().is_empty());
    assert!(api.backend.iot.lock().unwrap().things.is_empty());
}

#[tokio::test]
async fn roles_are_enforced_before_anything_happens_and_changes_are_audited() {
    let api = api();
    let refused = api
        .viewer()
        .post(
            "/v1/devices",
            json!({"device_id": "d1", "device_type": "t"}),
        )
        .await;
    assert_error(&refused, 403, None);
    assert!(api.backend.devices.lock().unwrap().is_empty());
    assert_eq!(register(&api, "d1").await.status, 201);
    // Credentials are for admins only.
    assert_error(
        &api.operator()
            .post("/v1/devices/d1/certificates", json!({"csr": csr("d1")}))
            .await,
        403,
        None,
    );
    assert_error(&api.operator().delete("/v1/devices/d1").await, 403, None);
    // Reads are not audited; every permitted change is, with its outcome.
    api.viewer().get("/v1/devices").await;
    assert_error(&register(&api, "d1").await, 409, None);
    let audit = api.backend.audit.lock().unwrap().clone();
    let rows: Vec<(String, Option<String>, String, Option<u16>)> = audit
        .into_iter()
        .map(|(e, status)| (e.action, e.target, e.actor, status))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "POST /v1/devices".into(),
                Some("d1".into()),
                "operator-client".into(),
                Some(201)
            ),
            (
                "POST /v1/devices".into(),
                Some("d1".into()),
                "operator-client".into(),
                Some(409)
            ),
        ]
    );
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let api = api();
    for i in 0..7 {
        register(&api, &format!("dev-{i}")).await;
    }
    api.operator()
        .patch(
            "/v1/devices/dev-3",
            json!({"device_type": "power-meter", "group": "plant-b"}),
        )
        .await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let target = match &token {
            Some(t) => format!("/v1/devices?type=env-sensor&limit=4&next_token={t}"),
            None => "/v1/devices?type=env-sensor&limit=4".to_owned(),
        };
        let page = api.viewer().get(&target).await.expect_status(200);
        for d in page.body["devices"].as_array().unwrap() {
            seen.push(d["device_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["dev-0", "dev-1", "dev-2", "dev-4", "dev-5", "dev-6"]);
    let by_group = api.viewer().get("/v1/devices?group=plant-b").await;
    assert_eq!(by_group.body["devices"][0]["device_id"], "dev-3");
    let things = api.backend.iot.lock().unwrap().things.clone();
    assert_eq!(things["dev-3"].1.as_deref(), Some("plant-b"));
    for bad in [
        "/v1/devices?limit=0",
        "/v1/devices?limit=abc",
        "/v1/devices?status=gone",
        "/v1/devices?next_token=%%%",
        // An empty value is a value, not an absent parameter.
        "/v1/devices?limit=",
        "/v1/devices?group=",
    ] {
        let response = api.viewer().get(bad).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
        assert!(response.body["error"]["field"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn an_iot_outage_is_a_503_and_a_retry_completes_the_registration() {
    let api = api();
    *api.backend.iot_down.lock().unwrap() = true;
    assert_error(&register(&api, "r-1").await, 503, None);
    assert!(api.backend.devices.lock().unwrap().is_empty());
    *api.backend.iot_down.lock().unwrap() = false;
    assert_eq!(register(&api, "r-1").await.status, 201);
}

#[tokio::test]
async fn api_gateway_events_route_by_route_key_and_take_the_caller_from_the_authorizer() {
    let api = api();
    register(&api, "sensor-0042").await;
    let fixture = include_str!("../../../../tests/fixtures/apigw-v2-admin-request.json");
    let request = lambda_http::request::from_str(fixture).unwrap();
    let routed = api_request(&request).unwrap();
    assert_eq!(routed.route.key(), "PUT /v1/devices/{id}/quarantine");
    assert_eq!(routed.params["id"], "sensor-0042");
    assert_eq!(routed.principal.role, Role::Operator);
    assert_eq!(routed.principal.subject, "7fltq2c9o1k3j5m6n8p0r2s4t6");
    let response = api.handle_http(request).await;
    assert_eq!(response.status(), 200);
    assert!(api.backend.devices.lock().unwrap()["sensor-0042"].quarantined);

    // Without the authorizer's claims: 401, whatever the route.
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = api.handle_http(request).await;
    assert_eq!(response.status(), 401);

    // Scopes of another resource server grant nothing.
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = json!(["shop/admin"]);
    event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = json!("shop/admin");
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(api.handle_http(request).await.status(), 401);

    // A body over the limit is refused before it is read.
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["body"] = json!("x".repeat(admin_api::request::MAX_BODY_BYTES + 1));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(api.handle_http(request).await.status(), 413);
}

#[tokio::test]
async fn a_row_without_an_iot_thing_cannot_change_group_but_can_be_decommissioned() {
    let api = api();
    register(&api, "legacy").await;
    // As if the row had been written by another tool: no thing behind it.
    api.backend.iot.lock().unwrap().things.clear();
    let moved = api
        .operator()
        .patch("/v1/devices/legacy", json!({"group": "elsewhere"}))
        .await;
    assert_error(&moved, 409, None);
    assert_eq!(
        api.backend.devices.lock().unwrap()["legacy"]
            .group
            .as_deref(),
        Some("plant-a")
    );
    api.operator()
        .patch("/v1/devices/legacy", json!({"location": "hall 9"}))
        .await
        .expect_status(200);
    api.admin()
        .delete("/v1/devices/legacy")
        .await
        .expect_status(200);
}
